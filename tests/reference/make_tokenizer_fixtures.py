#!/usr/bin/python3
"""Writes tests/LoraMixer.Tests/Fixtures/tokenizers/llama2_ids.json from the reference tokenizers.

Run with a Python that has the reference SentencePiece library (0.1.97 was used):

    /usr/bin/python3 tests/reference/make_tokenizer_fixtures.py [path/to/shared]

It reads shared/tokenizers/llama2/tokenizer.model (and tokenizer.bin) from the shared folder beside the
repository; those files are never committed, only the ids they produce.

For every text the fixture holds:
  ids          sp.encode(text)                    (no BOS; the C# test prepends 1 for the BOS variant)
  ids_with_bos sp.encode(text, add_bos=True)
  decoded      sp.decode(ids)                     (what Decode(ids) must give back)
  llama2c_ids  what llama2.c's run.c encode(t, text, bos=0, eos=0) returns for tokenizer.bin, computed by
               the line-by-line port below (run.c is the reference for the llama2.c format, and it is
               known to differ from SentencePiece on some inputs)
"""
import json
import os
import struct
import sys

import sentencepiece as spm

TEXTS = [
    "",
    " ",
    "   ",
    "a  b   c",
    "\t",
    "\tindented\twith\ttabs",
    "\n",
    "line one\nline two\n",
    "windows\r\nline\r\nendings\r\n",
    "\n\n\n",
    " \n ",
    "  two leading spaces",
    "trailing spaces   ",
    "    four spaces of indent",
    "Hello world",
    "Hello, world! How are you today?",
    "Once upon a time, there was a little girl named Lily.",
    "don't won't it's I'm we'll they'd",
    "ALL CAPS SHOUTING AND MiXeD CaSe",
    "café naïve résumé façade",
    "Über Müller straße",
    "El niño español mañana",
    "Tiếng Việt có dấu: Xin chào thế giới",
    "Ωmega Γειά σου Κόσμε",
    "Привет, мир! Как дела?",
    "中文分词测试，简体中文。",
    "日本語のテキスト、カタカナとひらがな",
    "한국어 텍스트입니다",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีครับ",
    "emoji 😀🎉🚀",
    "👨\u200d👩\u200d👧\u200d👦 family ZWJ",
    "flags 🇺🇸🇯🇵🇫🇷",
    "👍🏽 skin tone",
    "1234567890",
    "3.14159265358979323846",
    "The year 2024 had 366 days and 8784 hours.",
    "def foo(x):\n    return [x * 2 for x in range(10)]\n",
    "if (a && b) {\n\tc[i] = {d: 1};\n}",
    "https://example.com/path/to?query=1&b=2#frag",
    "mail me: user.name+tag@example.co.uk",
    "mixed English и русский 和中文 and 日本語",
    "rare: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀 \u0fff",
    "math ∑∫√∞≠≤ ≈ π",
    "<s>literal special tokens</s>",
    "<0x0A> literal byte piece",
    "▁already▁meta▁spaces",
    "control \x01 and \x7f chars",
    "a\u00a0b non-breaking space",
    "zero\u200bwidth",
    "combining e\u0301 vs é",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "hello hello hello hello",
    "JSON: {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "The quick brown fox jumps over the lazy dog. " * 3,
]


def load_llama2c(path):
    """Reads a llama2.c tokenizer.bin: int32 max_token_length, then (float32 score, int32 len, bytes)*."""
    data = open(path, "rb").read()
    offset = 4
    vocab, scores = [], []
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        vocab.append(data[offset:offset + length])
        scores.append(score)
        offset += length
    return vocab, scores


def llama2c_encode(vocab, scores, text):
    """Line-by-line port of llama2.c run.c encode(t, text, bos=0, eos=0, ...)."""
    lookup = {piece: i for i, piece in enumerate(vocab)}
    data = text.encode("utf-8")
    tokens = []
    if len(data) > 0:
        tokens.append(lookup[b" "])
    buf = b""
    i = 0
    while i < len(data):
        c = data[i]
        if (c & 0xC0) != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = data[i + 1] if i + 1 < len(data) else 0
        if (nxt & 0xC0) == 0x80 and len(buf) < 4:
            i += 1
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
        i += 1
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            merged = vocab[tokens[k]] + vocab[tokens[k + 1]]
            tid = lookup.get(merged, -1)
            if tid != -1 and scores[tid] > best_score:
                best_score, best_id, best_idx = scores[tid], tid, k
        if best_idx == -1:
            break
        tokens[best_idx] = best_id
        del tokens[best_idx + 1]
    return tokens


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "..", "shared")
    folder = os.path.join(shared, "tokenizers", "llama2")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    vocab, scores = load_llama2c(os.path.join(folder, "tokenizer.bin"))
    assert len(TEXTS) == len(set(TEXTS)), "duplicate fixture text"
    cases = []
    for text in TEXTS:
        ids = sp.encode(text)
        cases.append({
            "text": text,
            "ids": ids,
            "ids_with_bos": sp.encode(text, add_bos=True),
            "decoded": sp.decode(ids),
            "llama2c_ids": llama2c_encode(vocab, scores, text),
        })
    fixture = {
        "source": "tests/reference/make_tokenizer_fixtures.py",
        "reference": "sentencepiece %s, Llama 2 tokenizer.model (32000 pieces); llama2.c run.c encode() port for tokenizer.bin" % spm.__version__,
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "vocab_size": sp.vocab_size(),
        "cases": cases,
    }
    out = os.path.join(repo, "tests", "LoraMixer.Tests", "Fixtures", "tokenizers", "llama2_ids.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    same = sum(1 for c in cases if c["ids"] == c["llama2c_ids"])
    print("wrote %s: %d texts, llama2.c encode equals sentencepiece on %d" % (out, len(cases), same))


if __name__ == "__main__":
    main()
