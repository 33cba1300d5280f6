#!/usr/bin/env node
// Writes the golden token ids that tests/DoraSharp.Tests/MiniLM/TokenizerGoldenTests.cs compares MiniLmTokenizer with,
// computed by Hugging Face's own tokenizers library (its Rust core, through the npm package "tokenizers").
//
// The tokenizer is built like all-MiniLM-L6-v2's tokenizer.json: BertNormalizer (clean_text, handle_chinese_chars,
// strip_accents null, lowercase), BertPreTokenizer, WordPiece (unk [UNK], prefix ##, max_input_chars_per_word 100),
// [CLS] $A [SEP], and the five special tokens as non-normalized added tokens. No truncation: the test truncates.
//
// Usage (dev time only; the tests read the committed JSON):
//   mkdir -p /tmp/hftok && (cd /tmp/hftok && npm install tokenizers@0.23.2)
//   NODE_PATH=/tmp/hftok/node_modules node scripts/minilm-tokenizer-golden.js VOCAB.txt INPUTS.json OUTPUT.json
// VOCAB.txt is the package's vocab.txt (MiniLmPackage.OpenVocabulary()); INPUTS.json a JSON array of strings, or a
// golden file, whose texts are then re-tokenized. The committed cases are MiniLmCheckSentences.All, 20 edge cases
// (special tokens in text, ASCII symbols, Unicode whitespace and controls, compatibility characters, words of 100 and
// 101 characters, Hangul, Devanagari, Vietnamese) and the first 8 test descriptions of each Debian section.
'use strict';
const fs = require('node:fs');
const { Tokenizer } = require('tokenizers');

const [vocabPath, inputsPath, outputPath] = process.argv.slice(2);
if (!outputPath) {
  console.error('usage: minilm-tokenizer-golden.js VOCAB.txt INPUTS.json OUTPUT.json');
  process.exit(2);
}
const lines = fs.readFileSync(vocabPath, 'utf8').split(/\r?\n/);
if (lines[lines.length - 1] === '') lines.pop();
const vocab = {};
lines.forEach((token, id) => { vocab[token] = id; });
const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const config = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: special.map(t => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: 'BertPreTokenizer' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
           { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
    special_tokens: {
      '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
      '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
    },
  },
  decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
};
const tokenizer = Tokenizer.fromString(JSON.stringify(config));
const parsed = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
const texts = Array.isArray(parsed) ? parsed : parsed.cases.map(c => c.text);

(async () => {
  const out = [];
  for (const text of texts) {
    const enc = await tokenizer.encode(text);
    out.push({ text, ids: Array.from(enc.getIds()) });
  }
  // One case a line, so that a change in the golden file reads as a change of cases.
  const header = JSON.stringify({
    generator: 'scripts/minilm-tokenizer-golden.js with npm tokenizers ' + require('tokenizers/package.json').version,
    vocabulary_size: lines.length,
  });
  fs.writeFileSync(outputPath, header.slice(0, -1) + ',"cases":[\n' + out.map(c => JSON.stringify(c)).join(',\n') + '\n]}\n');
  console.log(`wrote ${out.length} cases to ${outputPath}`);
})();
