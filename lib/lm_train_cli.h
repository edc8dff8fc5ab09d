/* lm_train_cli: the "lm" mode of citer-train (citer-train lm --data FILE -o DIR ...): train a
 * small Llama model (and, unless given one, its byte-level BPE tokenizer) on a dataset, or
 * fine-tune a Hugging Face llama directory; writes a model directory citer-slm / citer-llm
 * load. */
#ifndef CITER_LM_TRAIN_CLI_H
#define CITER_LM_TRAIN_CLI_H

/* argv[0] is the mode's name ("lm"); options follow. The caller has run cli_init. Returns the
 * exit status (0); errors exit 1 and usage errors 2, as every tool does. */
int citer_lm_train_main(int argc, char **argv);

#endif
