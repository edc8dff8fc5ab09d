/* mathtask: generated arithmetic word problems (see mathtask.h). */
#include "mathtask.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "template.h"
#include "util.h"

/* ---- random numbers: splitmix64, the same on every machine ---- */

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in lo..hi (hi - lo is small, so the modulo bias is negligible). */
static long long uni(rng *r, long long lo, long long hi)
{
    return lo + (long long)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- text ---- */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_vprintf(sbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    xgrow((void **)&b->s, &b->cap, b->len + (size_t)n + 1, 1);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* ---- one problem being made ---- */

#define MAX_EQ 8

typedef struct {
    long long a, b, r;
    char op;
    int ref_a, ref_b; /* the earlier step whose result a (b) is; -1 for a given number */
} equation;

typedef struct {
    rng *r;
    sbuf problem, steps;
    equation eq[MAX_EQ];
    char eq_text[MAX_EQ][96];
    int n;
    int fail; /* the numbers drawn do not work out: draw again */
    int easy; /* every multiplication has a one-digit factor */
} ctx;

/* A sentence of the problem, and of the solution; sentences are joined by one space. */
static void ask(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ask(ctx *c, const char *fmt, ...)
{
    if (c->problem.len) sb_printf(&c->problem, " ");
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&c->problem, fmt, ap);
    va_end(ap);
}

static void say(ctx *c, const char *fmt, ...)
{
    if (c->steps.len) sb_printf(&c->steps, " ");
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&c->steps, fmt, ap);
    va_end(ap);
}

static long long apply(long long a, char op, long long b, int *ok)
{
    *ok = 1;
    switch (op) {
    case '+': return a + b;
    case '-':
        if (a < b) *ok = 0;
        return a - b;
    case '*': return a * b;
    default:
        if (b == 0 || a % b) {
            *ok = 0;
            return 0;
        }
        return a / b;
    }
}

/* One step "a op b = r": recorded, its text kept for the sentence (LAST), r returned. */
static long long calc(ctx *c, long long a, char op, long long b)
{
    int ok;
    long long r = apply(a, op, b, &ok);
    if (!ok || c->n == MAX_EQ) { /* a template bug; the test suite would see it */
        c->fail = 1;
        return 0;
    }
    equation *e = &c->eq[c->n];
    e->a = a, e->b = b, e->r = r, e->op = op;
    e->ref_a = e->ref_b = -1;
    for (int i = c->n - 1; i >= 0; i--) {
        if (e->ref_a < 0 && c->eq[i].r == a) e->ref_a = i;
        if (e->ref_b < 0 && c->eq[i].r == b) e->ref_b = i;
    }
    snprintf(c->eq_text[c->n], sizeof c->eq_text[0], "%lld %c %lld = %lld", a, op, b, r);
    c->n++;
    return r;
}

#define LAST (c->eq_text[c->n ? c->n - 1 : 0])

typedef struct {
    const char *name, *he, *He, *his, *His, *him;
} person;

static const person people[] = {
    {"Tom", "he", "He", "his", "His", "him"},       {"Anna", "she", "She", "her", "Her", "her"},
    {"Ravi", "he", "He", "his", "His", "him"},      {"Maria", "she", "She", "her", "Her", "her"},
    {"Ben", "he", "He", "his", "His", "him"},       {"Lucy", "she", "She", "her", "Her", "her"},
    {"Omar", "he", "He", "his", "His", "him"},      {"Mei", "she", "She", "her", "Her", "her"},
    {"Jack", "he", "He", "his", "His", "him"},      {"Sofia", "she", "She", "her", "Her", "her"},
    {"Diego", "he", "He", "his", "His", "him"},     {"Emma", "she", "She", "her", "Her", "her"},
    {"Kenji", "he", "He", "his", "His", "him"},     {"Aisha", "she", "She", "her", "Her", "her"},
    {"Lars", "he", "He", "his", "His", "him"},      {"Nina", "she", "She", "her", "Her", "her"},
    {"Sam", "he", "He", "his", "His", "him"},       {"Chloe", "she", "She", "her", "Her", "her"},
    {"Ivan", "he", "He", "his", "His", "him"},      {"Zara", "she", "She", "her", "Her", "her"},
    {"Pedro", "he", "He", "his", "His", "him"},     {"Grace", "she", "She", "her", "Her", "her"},
    {"Yusuf", "he", "He", "his", "His", "him"},     {"Hana", "she", "She", "her", "Her", "her"},
};

#define PICK(c, arr) (&(arr)[uni((c)->r, 0, (long long)(sizeof(arr) / sizeof((arr)[0])) - 1)])

static const person *someone(ctx *c) { return PICK(c, people); }

/* A divisor of n in lo..hi chosen at random, or 0 when there is none. */
static long long divisor_in(ctx *c, long long n, long long lo, long long hi)
{
    long long d[64];
    int k = 0;
    for (long long x = lo; x <= hi && k < 64; x++)
        if (n % x == 0) d[k++] = x;
    return k ? d[uni(c->r, 0, k - 1)] : 0;
}

/* A multiplication's second factor: one digit in easy problems (the same one draw). */
static long long factor(ctx *c, long long lo, long long hi)
{
    return c->easy ? uni(c->r, 2, 9) : uni(c->r, lo, hi);
}

/* ---- the templates ---- */

typedef struct {
    const char *one, *many;
} noun;

static void t_shopping(ctx *c, int steps)
{
    static const noun goods[] = {{"pen", "pens"},       {"notebook", "notebooks"},
                                 {"mug", "mugs"},       {"towel", "towels"},
                                 {"lamp", "lamps"},     {"chair", "chairs"},
                                 {"shirt", "shirts"},   {"plant", "plants"},
                                 {"book", "books"},     {"ball", "balls"},
                                 {"candle", "candles"}, {"basket", "baskets"}};
    const person *p = someone(c);
    const noun *x = PICK(c, goods), *y = PICK(c, goods);
    while (y == x) y = PICK(c, goods);
    long long a = uni(c->r, 12, 48), pa = factor(c, 12, 95);
    if (steps == 2) {
        long long cost = a * pa, bill = (cost / 100 + uni(c->r, 1, 4)) * 100;
        ask(c, "%s buys %lld %s for %lld dollars each.", p->name, a, x->many, pa);
        ask(c, "%s pays with %lld dollars. How much change does %s get?", p->He, bill, p->he);
        calc(c, a, '*', pa);
        say(c, "%s pays %s dollars for the %s.", p->name, LAST, x->many);
        calc(c, bill, '-', cost);
        say(c, "The change is %s dollars.", LAST);
        return;
    }
    long long b = uni(c->r, 12, 48), pb = factor(c, 12, 95);
    ask(c, "%s buys %lld %s for %lld dollars each and %lld %s for %lld dollars each.", p->name,
        a, x->many, pa, b, y->many, pb);
    long long bill = ((a * pa + b * pb) / 100 + uni(c->r, 1, 5)) * 100;
    if (steps == 3) ask(c, "How much does %s spend in total?", p->he);
    else ask(c, "%s pays with %lld dollars. How much change does %s get?", p->He, bill, p->he);
    long long u = calc(c, a, '*', pa);
    say(c, "The %s cost %s dollars.", x->many, LAST);
    long long v = calc(c, b, '*', pb);
    say(c, "The %s cost %s dollars.", y->many, LAST);
    long long t = calc(c, u, '+', v);
    say(c, "In total %s spends %s dollars.", p->he, LAST);
    if (steps == 4) {
        calc(c, bill, '-', t);
        say(c, "The change is %s dollars.", LAST);
    }
}

static void t_bakery(ctx *c, int steps)
{
    static const noun items[] = {{"cookie", "cookies"}, {"muffin", "muffins"},
                                 {"roll", "rolls"},     {"cupcake", "cupcakes"},
                                 {"bagel", "bagels"},   {"pie", "pies"},
                                 {"scone", "scones"},   {"pretzel", "pretzels"}};
    const person *p = someone(c);
    const noun *it = PICK(c, items);
    long long trays = uni(c->r, 12, 40), per = factor(c, 12, 36), total = trays * per;
    long long keep = 0, boxes;
    if (steps == 2) {
        boxes = divisor_in(c, total, 3, 19);
        if (!boxes) {
            c->fail = 1;
            return;
        }
    } else {
        boxes = uni(c->r, 3, 12);
        keep = total % boxes + boxes * uni(c->r, 1, 3);
    }
    ask(c, "%s bakes %lld trays of %s with %lld %s on each tray.", p->name, trays, it->many, per,
        it->many);
    if (steps == 2)
        ask(c, "%s packs them equally into %lld boxes. How many %s go in each box?", p->He,
            boxes, it->many);
    else
        ask(c, "%s keeps %lld %s for the shop and packs the rest equally into %lld boxes.", p->He,
            keep, it->many, boxes);
    long long price = uni(c->r, 2, 9);
    if (steps == 3) ask(c, "How many %s go in each box?", it->many);
    if (steps == 4)
        ask(c, "Each %s sells for %lld dollars. How many dollars is one box worth?", it->one,
            price);
    long long t = calc(c, trays, '*', per);
    say(c, "%s bakes %s %s.", p->name, LAST, it->many);
    if (steps >= 3) {
        t = calc(c, t, '-', keep);
        say(c, "After keeping %lld, %s are left.", keep, LAST);
    }
    long long q = calc(c, t, '/', boxes);
    say(c, "Each box gets %s %s.", LAST, it->many);
    if (steps == 4) {
        calc(c, q, '*', price);
        say(c, "One box is worth %s dollars.", LAST);
    }
}

static void t_factory(ctx *c, int steps)
{
    static const noun parts[] = {{"bolt", "bolts"},     {"bottle", "bottles"}, {"toy", "toys"},
                                 {"brick", "bricks"},   {"cup", "cups"},       {"gear", "gears"},
                                 {"button", "buttons"}, {"tile", "tiles"}};
    static const char *const places[] = {"A machine", "A factory line", "A robot", "A press"};
    const noun *pt = PICK(c, parts);
    const char *who = *PICK(c, places);
    long long rate = uni(c->r, 12, 95), hours = factor(c, 6, 16), days = factor(c, 3, 24);
    long long total = rate * hours * days, box = uni(c->r, 6, 24);
    long long bad = steps == 4 ? total % box + box * uni(c->r, 1, 5) : uni(c->r, 11, 99);
    ask(c, "%s makes %lld %s an hour and runs %lld hours a day.", who, rate, pt->many, hours);
    if (steps == 2) {
        ask(c, "How many %s does it make in %lld days?", pt->many, days);
    } else {
        ask(c, "In %lld days, %lld of the %s it makes are broken.", days, bad, pt->many);
        if (steps == 3) ask(c, "How many good %s does it make?", pt->many);
        else
            ask(c, "The good %s are packed in boxes of %lld. How many boxes are filled?",
                pt->many, box);
    }
    long long d = calc(c, rate, '*', hours);
    say(c, "In one day it makes %s %s.", LAST, pt->many);
    long long t = calc(c, d, '*', days);
    say(c, "In %lld days it makes %s %s.", days, LAST, pt->many);
    if (steps >= 3) {
        t = calc(c, t, '-', bad);
        say(c, "The good ones are %s.", LAST);
    }
    if (steps == 4) {
        calc(c, t, '/', box);
        say(c, "They fill %s boxes.", LAST);
    }
}

static void t_ages(ctx *c, int steps)
{
    const person *p = someone(c);
    long long age, times;
    do {
        age = uni(c->r, 6, 16);
        times = uni(c->r, 4, 8);
    } while (age * times < 52 || age * times > 96);
    long long diff = uni(c->r, 2, 9), later = uni(c->r, 11, 29), year = uni(c->r, 2015, 2030);
    ask(c, "%s is %lld years old. %s grandfather is %lld times as old as %s.", p->name, age,
        p->His, times, p->name);
    if (steps == 2) {
        ask(c, "How old will the grandfather be in %lld years?", later);
    } else {
        ask(c, "%s grandmother is %lld years younger than the grandfather.", p->His, diff);
        if (steps == 3) ask(c, "It is now %lld. In which year was the grandmother born?", year);
        else ask(c, "What is the sum of the ages of all three?");
    }
    long long g = calc(c, age, '*', times);
    say(c, "The grandfather is %s years old.", LAST);
    if (steps == 2) {
        calc(c, g, '+', later);
        say(c, "In %lld years he will be %s years old.", later, LAST);
        return;
    }
    long long m = calc(c, g, '-', diff);
    say(c, "The grandmother is %s years old.", LAST);
    if (steps == 3) {
        calc(c, year, '-', m);
        say(c, "She was born in %s.", LAST);
        return;
    }
    long long s = calc(c, age, '+', g);
    say(c, "%s and the grandfather are %s years old together.", p->name, LAST);
    calc(c, s, '+', m);
    say(c, "With the grandmother the sum is %s years.", LAST);
}

static void t_areas(ctx *c, int steps)
{
    static const char *const places[] = {"garden", "field", "yard", "playground", "parking lot",
                                         "hall floor"};
    static const char *const covers[] = {"A pond", "A shed", "A path", "A patio", "A sandbox"};
    const char *pl = *PICK(c, places);
    long long l = uni(c->r, 12, 85), w = factor(c, 12, 85);
    ask(c, "A rectangular %s is %lld meters long and %lld meters wide.", pl, l, w);
    if (steps == 2) {
        if (l * w / 3 < 15) {
            c->fail = 1;
            return;
        }
        long long used = uni(c->r, 15, l * w / 3);
        ask(c, "%s takes up %lld square meters of it. How many square meters are left?",
            *PICK(c, covers), used);
        long long a = calc(c, l, '*', w);
        say(c, "The %s has an area of %s square meters.", pl, LAST);
        calc(c, a, '-', used);
        say(c, "What is left is %s square meters.", LAST);
        return;
    }
    long long l2 = uni(c->r, 12, 85), w2 = factor(c, 12, 85), price = uni(c->r, 2, 9);
    ask(c, "A second %s is %lld meters long and %lld meters wide.", pl, l2, w2);
    if (steps == 3) ask(c, "What is their total area in square meters?");
    else ask(c, "Seed for one square meter costs %lld dollars. How much does seed for both cost?",
             price);
    long long a = calc(c, l, '*', w);
    say(c, "The first %s has %s square meters.", pl, LAST);
    long long b = calc(c, l2, '*', w2);
    say(c, "The second has %s square meters.", LAST);
    long long t = calc(c, a, '+', b);
    say(c, "Together they have %s square meters.", LAST);
    if (steps == 4) {
        calc(c, t, '*', price);
        say(c, "The seed costs %s dollars.", LAST);
    }
}

static void t_savings(ctx *c, int steps)
{
    static const noun things[] = {{"bike", "bikes"},   {"game", "games"},   {"jacket", "jackets"},
                                  {"radio", "radios"}, {"watch", "watches"}, {"tent", "tents"},
                                  {"kite", "kites"},   {"puzzle", "puzzles"}};
    const person *p = someone(c);
    long long per = uni(c->r, 12, 75), weeks = factor(c, 12, 52), saved = per * weeks;
    long long spend = uni(c->r, 11, saved / 2), price = uni(c->r, 12, 60);
    long long gift = uni(c->r, 11, 99);
    if (steps == 4) {
        long long left = saved - spend;
        gift = (price - left % price) % price + price * uni(c->r, 1, 4);
    }
    const noun *th = PICK(c, things);
    ask(c, "%s saves %lld dollars every week for %lld weeks.", p->name, per, weeks);
    if (steps == 2) {
        ask(c, "Then %s spends %lld dollars on a %s. How much money is left?", p->he, spend,
            th->one);
    } else {
        ask(c, "%s aunt gives %s %lld dollars, and %s spends %lld dollars on a %s.",
            p->His, p->him, gift, p->he,
            spend, th->one);
        if (steps == 3) ask(c, "How much money is left?");
        else
            ask(c, "With the rest %s buys %s that cost %lld dollars each. How many does %s buy?",
                p->he, PICK(c, things)->many, price, p->he);
    }
    long long t = calc(c, per, '*', weeks);
    say(c, "%s saves %s dollars.", p->name, LAST);
    if (steps >= 3) {
        t = calc(c, t, '+', gift);
        say(c, "With the gift %s has %s dollars.", p->he, LAST);
    }
    t = calc(c, t, '-', spend);
    say(c, "After the %s, %s dollars are left.", th->one, LAST);
    if (steps == 4) {
        calc(c, t, '/', price);
        say(c, "%s buys %s of them.", p->He, LAST);
    }
}

static void t_recipe(ctx *c, int steps)
{
    static const char *const stuff[] = {"flour", "sugar", "butter", "rice", "oats", "cocoa"};
    static const char *const dishes[] = {"cookies", "pancakes", "muffins", "servings",
                                         "waffles", "biscuits"};
    const person *p = someone(c);
    const char *s = *PICK(c, stuff), *d = *PICK(c, dishes);
    long long grams = uni(c->r, 115, 390), batch = uni(c->r, 6, 24), mult = factor(c, 12, 36);
    long long want = batch * mult, need = grams * mult, bag = uni(c->r, 200, 900);
    long long have = steps == 4 ? need % bag + bag * uni(c->r, 1, 3) : uni(c->r, 100, need - 50);
    if (have >= need) {
        c->fail = 1;
        return;
    }
    ask(c, "A recipe uses %lld grams of %s for %lld %s.", grams, s, batch, d);
    if (steps == 2) {
        ask(c, "How many grams of %s are needed for %lld %s?", s, want, d);
    } else {
        ask(c, "%s wants to make %lld %s and has %lld grams of %s.", p->name, want, d, have, s);
        if (steps == 3) ask(c, "How many more grams does %s need?", p->he);
        else
            ask(c, "The %s is sold in bags of %lld grams. How many bags must %s buy?", s, bag,
                p->he);
    }
    long long m = calc(c, want, '/', batch);
    say(c, "%lld %s are %s batches.", want, d, LAST);
    long long g = calc(c, m, '*', grams);
    say(c, "They need %s grams of %s.", LAST, s);
    if (steps >= 3) {
        g = calc(c, g, '-', have);
        say(c, "%s needs %s more grams.", p->name, LAST);
    }
    if (steps == 4) {
        calc(c, g, '/', bag);
        say(c, "That is %s bags.", LAST);
    }
}

static void t_travel(ctx *c, int steps)
{
    static const char *const vehicles[] = {"train", "bus", "truck", "car", "ship", "van"};
    const char *v = *PICK(c, vehicles);
    long long speed = uni(c->r, 45, 95), hours = factor(c, 3, 14);
    if (steps == 2) {
        long long dist = speed * hours, trip = dist + uni(c->r, 25, 900);
        ask(c, "A %s travels at %lld km per hour. The trip is %lld km long.", v, speed, trip);
        ask(c, "How many km are left after %lld hours?", hours);
        long long d = calc(c, speed, '*', hours);
        say(c, "In %lld hours it goes %s km.", hours, LAST);
        calc(c, trip, '-', d);
        say(c, "There are %s km left.", LAST);
        return;
    }
    long long speed2 = uni(c->r, 40, 90), hours2 = uni(c->r, 2, 9);
    long long total = speed * hours + speed2 * hours2, back = 0;
    if (steps == 4 && !(back = divisor_in(c, total, 40, 130))) {
        c->fail = 1;
        return;
    }
    ask(c, "A %s travels at %lld km per hour for %lld hours, then at %lld km per hour for %lld "
           "hours.",
        v, speed, hours, speed2, hours2);
    if (steps == 3) ask(c, "How far does it go in total?");
    else
        ask(c, "On the way back it travels at %lld km per hour. How many hours does the way back "
               "take?",
            back);
    long long a = calc(c, speed, '*', hours);
    say(c, "First it goes %s km.", LAST);
    long long b = calc(c, speed2, '*', hours2);
    say(c, "Then it goes %s km.", LAST);
    long long t = calc(c, a, '+', b);
    say(c, "In total it goes %s km.", LAST);
    if (steps == 4) {
        calc(c, t, '/', back);
        say(c, "The way back takes %s hours.", LAST);
    }
}

static void t_wages(ctx *c, int steps)
{
    static const char *const jobs[] = {"at a cafe", "at a library", "at a farm", "in a shop",
                                       "at a garage", "at a hotel"};
    const person *p = someone(c);
    long long hours = uni(c->r, 15, 45), rate = factor(c, 12, 38), weeks = factor(c, 4, 16);
    long long total = hours * rate * weeks, months = uni(c->r, 2, 6);
    if (steps != 4 && total / 2 < 100) {
        c->fail = 1;
        return;
    }
    long long rent = steps == 4 ? total % months + months * uni(c->r, 20, 150)
                                : uni(c->r, 100, total / 2);
    if (rent >= total) {
        c->fail = 1;
        return;
    }
    ask(c, "%s works %s for %lld hours a week and earns %lld dollars an hour.", p->name,
        *PICK(c, jobs), hours, rate);
    if (steps == 2) {
        ask(c, "How much does %s earn in %lld weeks?", p->he, weeks);
    } else {
        ask(c, "After %lld weeks %s pays %lld dollars of it for rent.", weeks, p->he, rent);
        if (steps == 3) ask(c, "How much money is left?");
        else
            ask(c, "%s splits the rest equally over %lld months. How much is that per month?",
                p->He, months);
    }
    long long w = calc(c, hours, '*', rate);
    say(c, "In one week %s earns %s dollars.", p->he, LAST);
    long long t = calc(c, w, '*', weeks);
    say(c, "In %lld weeks %s earns %s dollars.", weeks, p->he, LAST);
    if (steps >= 3) {
        t = calc(c, t, '-', rent);
        say(c, "After the rent %s dollars are left.", LAST);
    }
    if (steps == 4) {
        calc(c, t, '/', months);
        say(c, "Each month gets %s dollars.", LAST);
    }
}

static void t_theater(ctx *c, int steps)
{
    static const char *const halls[] = {"A theater", "A cinema", "A concert hall", "A stadium",
                                        "A school hall"};
    long long rows = uni(c->r, 12, 45), seats = factor(c, 14, 38), empty = uni(c->r, 11, 99);
    long long price = factor(c, 8, 35), fee = uni(c->r, 150, 2500);
    if (empty >= rows * seats) {
        c->fail = 1;
        return;
    }
    ask(c, "%s has %lld rows with %lld seats in each row. At one show %lld seats are empty.",
        *PICK(c, halls), rows, seats, empty);
    if (steps == 2) ask(c, "How many people are at the show?");
    else if (steps == 3) ask(c, "Each ticket costs %lld dollars. How much money do the tickets "
                                "bring in?",
                             price);
    else ask(c, "Each ticket costs %lld dollars, and the band is paid %lld dollars. How much "
                "money is left?",
             price, fee);
    long long all = calc(c, rows, '*', seats);
    say(c, "There are %s seats.", LAST);
    long long people = calc(c, all, '-', empty);
    say(c, "So %s people are at the show.", LAST);
    if (steps >= 3) {
        long long money = calc(c, people, '*', price);
        say(c, "The tickets bring in %s dollars.", LAST);
        if (steps == 4) {
            if (fee >= money) {
                c->fail = 1;
                return;
            }
            calc(c, money, '-', fee);
            say(c, "After paying the band %s dollars are left.", LAST);
        }
    }
}

typedef struct {
    const char *name;
    void (*make)(ctx *c, int steps);
} template_def;

static const template_def templates[] = {
    {"shopping", t_shopping}, {"bakery", t_bakery}, {"factory", t_factory},
    {"ages", t_ages},         {"areas", t_areas},   {"savings", t_savings},
    {"recipe", t_recipe},     {"travel", t_travel}, {"wages", t_wages},
    {"theater", t_theater},
};
#define N_TEMPLATES ((int)(sizeof templates / sizeof templates[0]))

const char *const *citer_mathtask_template_names(void)
{
    static const char *names[N_TEMPLATES + 1];
    for (int i = 0; i < N_TEMPLATES; i++) names[i] = templates[i].name;
    return names;
}

/* ---- wrong answers for the multiple-choice variant ---- */

/* The final result when step k's result is replaced by v: the later steps are redone with it.
 * 0 when a later step no longer works out (negative, or a division not exact). */
static int redo_from(const ctx *c, int k, long long v, long long *out)
{
    long long val[MAX_EQ];
    for (int i = 0; i < k; i++) val[i] = c->eq[i].r;
    val[k] = v;
    for (int i = k + 1; i < c->n; i++) {
        const equation *e = &c->eq[i];
        long long a = e->ref_a >= 0 ? val[e->ref_a] : e->a;
        long long b = e->ref_b >= 0 ? val[e->ref_b] : e->b;
        int ok;
        val[i] = apply(a, e->op, b, &ok);
        if (!ok) return 0;
    }
    *out = val[c->n - 1];
    return 1;
}

static void add_candidate(long long *pool, int *n, int cap, long long v, long long answer)
{
    if (v <= 0 || v == answer || *n >= cap) return;
    for (int i = 0; i < *n; i++)
        if (pool[i] == v) return;
    pool[(*n)++] = v;
}

static void make_choices(ctx *c, citer_mathtask *t)
{
    long long answer = t->answer, pool[64];
    int n = 0;
    const equation *last = &c->eq[c->n - 1];
    /* a carry slip in a multiplication or an addition, carried through the later steps */
    for (int k = 0; k < c->n; k++) {
        const equation *e = &c->eq[k];
        if (e->op != '*' && e->op != '+') continue;
        static const long long slips[] = {10, -10, 100, -100};
        for (int s = 0; s < 4; s++) {
            long long v;
            if (e->r + slips[s] > 0 && e->r >= (slips[s] < 0 ? -slips[s] : slips[s]) &&
                redo_from(c, k, e->r + slips[s], &v))
                add_candidate(pool, &n, 64, v, answer);
        }
    }
    /* the wrong operation in the last step */
    if (last->op == '+') add_candidate(pool, &n, 64, last->a - last->b, answer);
    if (last->op == '-') add_candidate(pool, &n, 64, last->a + last->b, answer);
    if (last->op == '*') {
        add_candidate(pool, &n, 64, last->a * (last->b - 1), answer);
        add_candidate(pool, &n, 64, last->a * (last->b + 1), answer);
    }
    /* the last step forgotten */
    if (c->n >= 2) add_candidate(pool, &n, 64, c->eq[c->n - 2].r, answer);
    /* two neighbouring digits swapped */
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lld", answer);
    for (int i = 0; i + 1 < nd; i++) {
        if (digits[i] == digits[i + 1] || (i == 0 && digits[1] == '0')) continue;
        char sw[32];
        memcpy(sw, digits, (size_t)nd + 1);
        sw[i] = digits[i + 1], sw[i + 1] = digits[i];
        add_candidate(pool, &n, 64, strtoll(sw, NULL, 10), answer);
    }
    /* shuffle, keep three; when the mistakes run short, off by ten, a hundred, one */
    for (int i = n - 1; i > 0; i--) {
        int j = (int)uni(c->r, 0, i);
        long long tmp = pool[i];
        pool[i] = pool[j], pool[j] = tmp;
    }
    if (n > 3) n = 3;
    static const long long fill[] = {10, -10, 100, 1, -1, 2, 1000, 20, 3};
    for (size_t i = 0; n < 3 && i < sizeof fill / sizeof fill[0]; i++)
        add_candidate(pool, &n, 3, answer + fill[i], answer);
    t->answer_index = (int)uni(c->r, 0, CITER_MATHTASK_CHOICES - 1);
    char buf[32];
    for (int i = 0, k = 0; i < CITER_MATHTASK_CHOICES; i++) {
        snprintf(buf, sizeof buf, "%lld", i == t->answer_index ? answer : pool[k++]);
        t->choices[i] = xstrdup(buf);
    }
}

/* ---- the generator ---- */

struct citer_mathgen {
    rng r;
    int split, min_steps, max_steps;
    int easy;
    uint64_t *seen; /* open addressing set of problem hashes; 0 marks a free slot */
    size_t seen_cap, seen_n;
};

uint64_t citer_mathtask_hash(const char *problem)
{
    return XXH64(problem, strlen(problem), CITER_MATHTASK_SPLIT_SALT);
}

int citer_mathtask_split_of(const char *problem)
{
    return citer_mathtask_hash(problem) % 4 == 0 ? CITER_SPLIT_TEST : CITER_SPLIT_TRAIN;
}

const char *citer_split_name(int split)
{
    return split == CITER_SPLIT_TRAIN ? "train" : split == CITER_SPLIT_TEST ? "test" : NULL;
}

int citer_split_from_name(const char *name)
{
    if (!name) return -1;
    if (strcmp(name, "train") == 0) return CITER_SPLIT_TRAIN;
    if (strcmp(name, "test") == 0) return CITER_SPLIT_TEST;
    return -1;
}

citer_mathgen *citer_mathgen_new(uint64_t seed, int split, int min_steps, int max_steps)
{
    if (split != CITER_SPLIT_TRAIN && split != CITER_SPLIT_TEST) {
        citer_set_error("unknown split %d", split);
        return NULL;
    }
    if (min_steps < CITER_MATHTASK_MIN_STEPS || max_steps > CITER_MATHTASK_MAX_STEPS ||
        min_steps > max_steps) {
        citer_set_error("steps %d-%d: the range must lie within %d-%d", min_steps, max_steps,
                        CITER_MATHTASK_MIN_STEPS, CITER_MATHTASK_MAX_STEPS);
        return NULL;
    }
    citer_mathgen *g = xcalloc(1, sizeof *g);
    /* the split is part of the stream's seed, so train and test draw different problems */
    g->r.s = seed ^ (split == CITER_SPLIT_TEST ? 0x7465737400000000ull : 0x747261696e000000ull);
    g->r.s = rng_next(&g->r);
    g->split = split;
    g->min_steps = min_steps;
    g->max_steps = max_steps;
    return g;
}

/* Add h to the set; 0 when it was there already. */
static int remember(citer_mathgen *g, uint64_t h)
{
    if (h == 0) h = 1;
    if (2 * (g->seen_n + 1) > g->seen_cap) {
        size_t cap = g->seen_cap ? 2 * g->seen_cap : 1024;
        uint64_t *s = xcalloc(cap, sizeof *s);
        for (size_t i = 0; i < g->seen_cap; i++) {
            if (!g->seen[i]) continue;
            size_t j = (size_t)(g->seen[i] & (cap - 1));
            while (s[j]) j = (j + 1) & (cap - 1);
            s[j] = g->seen[i];
        }
        free(g->seen);
        g->seen = s;
        g->seen_cap = cap;
    }
    size_t j = (size_t)(h & (g->seen_cap - 1));
    while (g->seen[j]) {
        if (g->seen[j] == h) return 0;
        j = (j + 1) & (g->seen_cap - 1);
    }
    g->seen[j] = h;
    g->seen_n++;
    return 1;
}

static void ctx_free(ctx *c)
{
    free(c->problem.s);
    free(c->steps.s);
}

int citer_mathgen_next(citer_mathgen *g, citer_mathtask *t)
{
    memset(t, 0, sizeof *t);
    enum { MAX_TRIES = 100000 };
    for (int tries = 0; tries < MAX_TRIES; tries++) {
        ctx c = {0};
        c.r = &g->r;
        c.easy = g->easy;
        const template_def *td = &templates[uni(&g->r, 0, N_TEMPLATES - 1)];
        int steps = (int)uni(&g->r, g->min_steps, g->max_steps);
        td->make(&c, steps);
        if (c.fail || c.n != steps || !c.problem.s || !c.steps.s ||
            citer_mathtask_split_of(c.problem.s) != g->split ||
            !remember(g, citer_mathtask_hash(c.problem.s))) {
            ctx_free(&c);
            continue;
        }
        t->problem = c.problem.s;
        t->hash = citer_mathtask_hash(t->problem);
        t->split = g->split;
        t->template_name = td->name;
        t->steps = steps;
        t->answer = c.eq[c.n - 1].r;
        sbuf s = {0};
        sb_printf(&s, "%s The answer is \\boxed{%lld}.", c.steps.s, t->answer);
        t->solution = s.s;
        make_choices(&c, t);
        sbuf m = {0};
        sb_printf(&m, "%s Therefore, the answer is %s (%c).", c.steps.s,
                  t->choices[t->answer_index], 'A' + t->answer_index);
        t->cot = m.s;
        free(c.steps.s);
        return 0;
    }
    citer_set_error("no new %s problem with %d-%d steps in %d tries", citer_split_name(g->split),
                    g->min_steps, g->max_steps, (int)MAX_TRIES);
    return -1;
}

void citer_mathgen_set_easy(citer_mathgen *g, int easy) { g->easy = easy; }

void citer_mathgen_free(citer_mathgen *g)
{
    if (!g) return;
    free(g->seen);
    free(g);
}

void citer_mathtask_free(citer_mathtask *t)
{
    free(t->problem);
    free(t->solution);
    free(t->cot);
    for (int i = 0; i < CITER_MATHTASK_CHOICES; i++) free(t->choices[i]);
    memset(t, 0, sizeof *t);
}

char *citer_mathtask_json(const citer_mathtask *t, int format)
{
    if (format != CITER_FMT_MATH && format != CITER_FMT_MC) {
        citer_set_error("generated items are math or mc, not format %d", format);
        return NULL;
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%016llx", citer_split_name(t->split),
             (unsigned long long)t->hash);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    if (format == CITER_FMT_MATH) {
        json_object_object_add(o, "problem", json_object_new_string(t->problem));
        json_object_object_add(o, "solution", json_object_new_string(t->solution));
    } else {
        json_object_object_add(o, "question", json_object_new_string(t->problem));
        json_object *ch = json_object_new_object(), *tx = json_object_new_array(),
                    *lb = json_object_new_array();
        for (int i = 0; i < CITER_MATHTASK_CHOICES; i++) {
            char l[2] = {(char)('A' + i), 0};
            json_object_array_add(tx, json_object_new_string(t->choices[i]));
            json_object_array_add(lb, json_object_new_string(l));
        }
        json_object_object_add(ch, "text", tx);
        json_object_object_add(ch, "label", lb);
        json_object_object_add(o, "choices", ch);
        char key[2] = {(char)('A' + t->answer_index), 0};
        json_object_object_add(o, "answerKey", json_object_new_string(key));
        json_object_object_add(o, "cot", json_object_new_string(t->cot));
    }
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    sbuf b = {0};
    sb_printf(&b, "%s\n", s);
    json_object_put(o);
    return b.s;
}
