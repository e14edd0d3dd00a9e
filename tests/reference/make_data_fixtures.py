#!/usr/bin/env python3
"""Writes tests/fixtures/data/cases.json: records and the input_ids / labels TRL makes of
them, for tests/test_data.c.

Each case: a tokenizer directory, records (JSONL objects), hone's collator and options,
max_length, and per example the input_ids and labels of TRL 0.19.1:
- text and prompt/completion records: SFTTrainer._prepare_dataset (EOS appended, the
  tokenizer's BOS, prompt and prompt+completion tokenized apart, truncation keeping the
  start) and TRL's DataCollatorForLanguageModeling (completion_only_loss=None: completion
  only for prompt/completion, everything for text);
- chat records: tokenizer.apply_chat_template(return_assistant_tokens_mask=True) with
  hone's built-in templates written as Jinja with {% generation %} around the assistant
  output (TRL's assistant_only_loss); labels = the ids where the mask is 1;
- response templates: DataCollatorForCompletionOnlyLM on the tokenized text. For the
  Llama 2 tokenizer the template ids are TRL's documented in-context fix,
  encode("\\n### Assistant:")[2:]; hone is given the plain string and must find them.
  hone also matches the template as it tokenizes alone (at the very start of a text it
  has no newline before it), so an example TRL finds nothing in with the in-context ids
  is collated again with the plain ids. The old collator also masks every label equal to
  the pad id; the pad here is set to a
  token the texts never contain, so that does not enter.
Examples are collated one at a time (no padding), as the labels of a row do not depend
on the others.

  ~/.cache/hone-ref-venv/bin/python tests/reference/make_data_fixtures.py
(trl 0.19.1, transformers 4.51.3, tokenizers 0.21.4, datasets 3.6.0 from PyPI)
"""
import json
import os
import tempfile
import sys
import warnings

warnings.filterwarnings("ignore")
import torch
import transformers
import trl
from datasets import Dataset
from trl import DataCollatorForCompletionOnlyLM, SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_dirs import TOKENIZERS, load_tokenizer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "data")

TEXTS = [
    "The price of the blue kettle is $24.99.",
    "Ünïcödé prices — 価格 ✓ 3,50 €",
    "  two leading spaces and\nnew lines\n",
    "already ends with the eos{eos}",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z and more words to be truncated",
]
PAIRS = [
    ("Q: what does a 2kg bag of rice cost?\nA:", " $3.49"),
    ("Price: ", "12"),
    ("Item: kettle\nPrice:", " 24.99{eos}"),
    ("a long prompt that will be cut by the maximum length of this case so the mask is whole", " yes"),
]
TEMPLATED = [
    "### Human: what does the kettle cost?\n### Assistant: 24.99 dollars",
    "### Human: first\n### Assistant: one\n### Human: second\n### Assistant: two",
    "no template in this one at all",
    "### Assistant: at the very start",
]


# hone's built-in chat templates as Jinja, with {% generation %} around what hone trains
CHAT_TEMPLATES = {
    "chatml": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'assistant' %}{% generation %}"
              "{{ m['content'] }}<|im_end|>{% endgeneration %}{% else %}{{ m['content'] }}<|im_end|>{% endif %}"
              "{{ '\\n' }}{% endfor %}",
    "llama3": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
              "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] | trim }}<|eot_id|>{% endgeneration %}"
              "{% else %}{{ m['content'] | trim }}<|eot_id|>{% endif %}{% endfor %}",
    # Llama-2-chat's tokenizer_config template, generation tags added
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
              "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
              "{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}"
              "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}"
              "{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
              "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
              "{% generation %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endgeneration %}{% endif %}{% endfor %}",
    "mistral": "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
               "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
               "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{% endif %}{% endfor %}",
}
CHATS = [
    [{"role": "user", "content": "What does the blue kettle cost?"},
     {"role": "assistant", "content": "It costs $24.99."}],
    [{"role": "system", "content": "You are a pricing assistant."},
     {"role": "user", "content": "Price of rice?"},
     {"role": "assistant", "content": "  $3.49 per 2kg  "},
     {"role": "user", "content": "And beans?\n"},
     {"role": "assistant", "content": "$2.10"}],
]


def hf_chat(tok, template, chats):
    out = []
    for msgs in chats:
        r = tok.apply_chat_template(msgs, chat_template=CHAT_TEMPLATES[template], tokenize=True, return_dict=True,
                                    return_assistant_tokens_mask=True)
        ids, mask = r["input_ids"], r["assistant_masks"]
        out.append({"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask)]})
    return out


def trl_prepare(tok, records, max_length):
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_length=max_length, dataset_num_proc=None, report_to=[])
    ds = Dataset.from_list(records)
    ds = SFTTrainer._prepare_dataset(None, ds, tok, args, False, None, "train")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # SFTTrainer's choice for completion_only_loss=None: on for prompt/completion datasets
    coll = DataCollatorForLanguageModeling(pad_token_id=pad, completion_only_loss="prompt" in records[0])
    out = []
    for ex in ds:
        b = coll([{k: ex[k] for k in ("input_ids", "completion_mask") if k in ex}])
        out.append({"input_ids": b["input_ids"][0].tolist(), "labels": b["labels"][0].tolist()})
    return out


def trl_template(tok, texts, template_ids, plain_ids, max_length):
    ds = trl_prepare(tok, [{"text": t} for t in texts], max_length)
    never = next(i for i in tok.all_special_ids if i not in (tok.eos_token_id, tok.bos_token_id))
    saved = tok.pad_token
    tok.pad_token = tok.convert_ids_to_tokens(never)
    coll = DataCollatorForCompletionOnlyLM(response_template=template_ids, tokenizer=tok)
    coll_plain = DataCollatorForCompletionOnlyLM(response_template=plain_ids, tokenizer=tok)
    out = []
    for ex in ds:
        assert never not in ex["input_ids"]
        b = coll([{"input_ids": ex["input_ids"]}])
        labels = b["labels"][0].tolist()
        if all(x == -100 for x in labels):   # hone also matches the template as it tokenizes alone
            labels = coll_plain([{"input_ids": ex["input_ids"]}])["labels"][0].tolist()
        out.append({"input_ids": ex["input_ids"], "labels": labels})
    tok.pad_token = saved
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for name in ("qwen3", "llama2"):
        tok = load_tokenizer(name)
        eos = tok.eos_token
        texts = [t.replace("{eos}", eos) for t in TEXTS]
        pairs = [(p, c.replace("{eos}", eos)) for p, c in PAIRS]
        text_recs = [{"text": t} for t in texts]
        cases.append({"name": f"{name}-text", "tokenizer": TOKENIZERS[name], "records": text_recs, "collator": "lm",
                      "options": {}, "max_length": 24, "expected": trl_prepare(tok, text_recs, 24)})
        pc = [{"prompt": p, "completion": c} for p, c in pairs]
        cases.append({"name": f"{name}-prompt-completion", "tokenizer": TOKENIZERS[name], "records": pc,
                      "collator": None, "options": {}, "max_length": 20, "expected": trl_prepare(tok, pc, 20)})
        # field-name overrides: the same records under other keys
        renamed = [{"question": p, "answer": c} for p, c in pairs]
        cases.append({"name": f"{name}-prompt-completion-fields", "tokenizer": TOKENIZERS[name], "records": renamed,
                      "collator": None, "options": {}, "max_length": 20,
                      "fields": {"prompt_field": "question", "completion_field": "answer"},
                      "expected": trl_prepare(tok, pc, 20)})
        tmpl = "### Assistant:"
        ids = tok.encode("\n" + tmpl, add_special_tokens=False)
        nl = tok.encode("\n", add_special_tokens=False)
        in_context = ids[len(nl):] if ids[:len(nl)] == nl else tok.encode(tmpl, add_special_tokens=False)
        cases.append({"name": f"{name}-response-template", "tokenizer": TOKENIZERS[name],
                      "records": [{"text": t} for t in TEMPLATED], "collator": "completion_only",
                      "options": {"response_template": tmpl, "max_missing_fraction": 1.0}, "max_length": 64,
                      "template_ids": in_context,
                      "expected": trl_template(tok, TEMPLATED, in_context, tok.encode(tmpl, add_special_tokens=False),
                                               64)})
        cases.append({"name": f"{name}-response-template-ids", "tokenizer": TOKENIZERS[name],
                      "records": [{"text": t} for t in TEMPLATED], "collator": "completion_only",
                      "options": {"response_template_ids": in_context, "max_missing_fraction": 1.0}, "max_length": 64,
                      "expected": trl_template(tok, TEMPLATED, in_context, in_context, 64)})
        for template in {"qwen3": ("chatml", "llama3"), "llama2": ("llama2", "mistral")}[name]:
            chats = CHATS if template != "mistral" else [CHATS[0], [m for m in CHATS[1] if m["role"] != "system"]]
            cases.append({"name": f"{name}-chat-{template}", "tokenizer": TOKENIZERS[name],
                          "records": [{"messages": m} for m in chats], "collator": None, "options": {},
                          "max_length": 256, "chat_template": template, "expected": hf_chat(tok, template, chats)})
        print(name, "template ids in context", in_context, "alone", tok.encode(tmpl, add_special_tokens=False))
    meta = {"versions": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
            "cases": cases}
    with open(os.path.join(OUT, "cases.json"), "w") as fh:
        json.dump(meta, fh, ensure_ascii=False, indent=0)
    for c in cases:
        print(c["name"], [len(e["input_ids"]) for e in c["expected"]],
              [sum(l != -100 for l in e["labels"]) for e in c["expected"]])


if __name__ == "__main__":
    main()
