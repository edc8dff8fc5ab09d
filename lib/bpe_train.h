/* bpe_train: learn a byte-level BPE vocabulary from text and write it as a Hugging Face
 * tokenizer.json of the Qwen2 kind: NFC normalizer, the Qwen2 Split regex + ByteLevel
 * (use_regex false) pre-tokenizer, ByteLevel decoder, and the added special tokens
 * <|endoftext|>, <|im_start|>, <|im_end|> after the learned tokens.
 *
 * Text is normalized and split with the same pre-tokenizer the tokenizer applies when
 * encoding (lib/pretokenize.h), so merges are learned on exactly the pieces it will see.
 * Ids 0..255 are the bytes (id b = byte b, written in GPT-2's byte-to-unicode alphabet), then
 * one id per merge in the order learned; each round merges the most frequent adjacent pair
 * (ties: the smaller left id, then the smaller right id), and pairs seen fewer than twice are
 * never merged. */
#ifndef CITER_BPE_TRAIN_H
#define CITER_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bpe_trainer bpe_trainer;

bpe_trainer *bpe_trainer_new(void);
void bpe_trainer_free(bpe_trainer *b);
/* Count the pre-tokenized pieces of n bytes of text. */
void bpe_trainer_add(bpe_trainer *b, const char *text, size_t n);
/* Learn merges until the vocabulary (bytes + merges + 3 special tokens) has vocab_size
 * tokens or no pair occurs twice. Returns the vocabulary size reached (>= 259). Further
 * calls to bpe_trainer_add have no effect on the result. */
int bpe_trainer_learn(bpe_trainer *b, int vocab_size);
int bpe_trainer_n_merges(const bpe_trainer *b);
/* Write tokenizer.json (path), and beside it tokenizer_config.json (eos <|endoftext|>, no BOS
 * added). Each file written atomically. 0, or -1 with citer_error(). */
int bpe_trainer_save(const bpe_trainer *b, const char *path, int model_max_length);

#endif
