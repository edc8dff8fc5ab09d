/* citer-llm: see citer-llm(1). The engine is shared with citer-slm; only the defaults differ. */
#include "engine_cli.h"

int main(int argc, char **argv) { return engine_main(argc, argv, 0); }
