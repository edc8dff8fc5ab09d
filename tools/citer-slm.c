/* citer-slm: see citer-slm(1). The engine is shared with citer-llm; only the defaults differ. */
#include "engine_cli.h"

int main(int argc, char **argv) { return engine_main(argc, argv, 1); }
