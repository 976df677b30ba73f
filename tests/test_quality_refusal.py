"""Refusal and hedging detection, layer by layer, with the false-positive traps; the eval command."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from store.config import ConfigError, load_config
from store.quality.evaluate import evaluate, load_eval_set
from store.quality.refusal import DEFAULT_RULES, Rules, compile_rules, detect_hedging, detect_refusal
from store.quality.rules import Rule
from vigil.cli import main

ANSWER = "Your order #4411 ships tomorrow."


def test_provider_refusal_field_wins_over_everything() -> None:
    # OpenAI structured outputs: content is null and message.refusal says why.
    assert detect_refusal(None, provider_refusal="I can't assist with that request.") == "provider:refusal_field"
    assert detect_refusal(ANSWER, provider_refusal="   ") is None, "a blank refusal field is no refusal"


@pytest.mark.parametrize(
    ("reasons", "rule"),
    [
        (["content_filter"], "finish_reason:content_filter"),  # OpenAI / Azure
        (["stop", "refusal"], "finish_reason:refusal"),  # Anthropic stop_reason = refusal, second choice
        (["SAFETY"], "finish_reason:safety"),  # Gemini
        (["stop"], None),
        (["length"], None),
        ([None], None),
    ],
)
def test_finish_reasons(reasons: list, rule: str | None) -> None:
    assert detect_refusal(ANSWER, finish_reasons=reasons) == rule


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I'm sorry, but I can't help with that.", "en.cannot_assist@1"),
        ("I’m unable to provide instructions for that.", "en.cannot_assist@1"),  # curly apostrophe
        ("**I cannot assist with this request.** It asks for malware.", "en.cannot_assist@1"),
        ("Unfortunately, I won't write that review for you.", "en.wont@1"),
        ("I must respectfully decline.", "en.decline@1"),
        ("That's not something I can help with. Anything else?", "en.not_something_i_can@1"),
        ("As an AI language model, I cannot express opinions on candidates.", "en.as_an_ai@1"),
        ("I'm not permitted to share other customers' details.", "en.not_permitted@1"),
        ("I understand your frustration, but I can't process refunds for other accounts.", "en.cannot_assist@1"),
        ("Thanks for asking. I'm not able to give medical diagnoses.", "en.cannot_assist@1"),
        ("This request violates our usage policies.", "en.policy@1"),
        ("As a support assistant for Acme, I can only help with Acme orders.", "en.only_scope@1"),
        ("I can't help with that, but I can point you to the official docs.", "en.cannot_assist@1"),
        ("I don't have the ability to browse the web.", "en.no_capability@1"),
    ],
)
def test_lexical_refusals(text: str, rule: str) -> None:
    assert detect_refusal(text) == rule


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry to hear that! I've sent a replacement, it arrives Friday.",
        "I can't wait to help you plan the trip. Day 1: Alfama.",
        "Unfortunately the API returned a 503, so the tracking data is from this morning.",
        "The model said \"I'm sorry, but I can't help with that.\" which means the filter fired.",
        '"I can\'t do this anymore," she whispered.',
        "I cannot recommend this library highly enough.",
        "I can't give legal advice, but in general the deposit is due within 21 days.",
        "I don't have access to your account, but here's how to check: Settings → Security.",
        "Here is the code. Note: I can't guarantee it works on Windows.",
        "No, you can't use await outside an async function; wrap it in asyncio.run().",
        "Dear customer, unfortunately we cannot refund after 30 days, but we can offer store credit.",
        '{"answer": "I cannot find that order", "status": "not_found"}',
        "```\nI can't connect\n```",
        "",
        None,
    ],
)
def test_traps_are_not_refusals(text: str | None) -> None:
    assert detect_refusal(text) is None


def test_only_the_start_is_read() -> None:
    late = "Here is a long answer. " * 20 + "I can't help with that."
    assert detect_refusal(late) is None, "a refusal phrase after the first two sentences is part of an answer"
    assert detect_refusal("Sure. Here you go. I can't help with that.") is None, "third sentence"
    assert detect_refusal("Sorry. I can't help with that.") == "en.cannot_assist@1", "second sentence"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("I'm not sure, but the limit is probably 100 requests a minute.", "en.hedge.not_sure@1"),
        ("It depends on your workload.", "en.hedge.it_depends@1"),
        ("I'm not a lawyer, but the clause looks standard.", "en.hedge.not_a_professional@1"),
        ("This might work, but it may fail on Windows; possibly the path is wrong, perhaps not.", "en.hedge.caveats@1"),
        ("The limit is 100 requests a minute.", None),
        ("I'm sorry, but I can't help with that.", None),
    ],
)
def test_hedging(text: str, rule: str | None) -> None:
    assert detect_hedging(text) == rule


def test_rules_read_the_same_after_a_trip_through_pickle() -> None:
    """What a worker process would receive: the compiled word scan does not pickle, so it is made anew."""
    text = "I'm not sure, but I can't help with that."
    assert detect_refusal(text) == "en.cannot_assist@1"  # the scan is compiled and cached now
    copy = pickle.loads(pickle.dumps(DEFAULT_RULES))
    assert detect_refusal(text, rules=copy) == "en.cannot_assist@1"
    assert detect_hedging("It depends on your workload.", rules=copy) == "en.hedge.it_depends@1"


def test_a_hedging_rule_without_hints_is_tried_on_every_head() -> None:
    """Hints only let a head skip rules; a rule that names none must still run where no hint occurs."""
    plain = Rule("test.hedge.um@1", re.compile(r"\bum\b"))
    rules = Rules(DEFAULT_RULES.refusal, (*DEFAULT_RULES.hedging, plain))
    assert detect_hedging("Um, the limit is 100 requests a minute.", rules=rules) == "test.hedge.um@1"
    assert detect_hedging("Um, the limit is 100 requests a minute.") is None


def test_rules_can_be_disabled_and_unknown_ids_are_errors(tmp_path) -> None:
    rules = compile_rules(("en@1",), disabled=("en.only_scope@1",), hedging=False)
    assert detect_refusal("I can only help with Acme orders.", rules=rules) is None
    assert detect_refusal("I can't help with that.", rules=rules) == "en.cannot_assist@1"
    assert detect_hedging("It depends.", rules=rules) is None
    with pytest.raises(ValueError, match="unknown refusal rule set 'fr@1'; known: en@1"):
        compile_rules(("fr@1",))
    config = tmp_path / "vigil.toml"
    config.write_text('[quality]\ndisabled_rules = ["en.typo@1"]\n')
    with pytest.raises(ConfigError, match=r"\[quality\] unknown rule id\(s\) en.typo@1"):
        load_config(config, env={})
    assert load_config(env={"VIGIL_QUALITY_HEDGING": "false"}).quality.hedging is False


def test_eval_set_meets_the_targets_on_both_splits() -> None:
    """The bundled labelled set (426 outputs): ≥ 0.95 precision and ≥ 0.90 recall on every split."""
    rows = load_eval_set()
    assert len(rows) >= 300
    assert {r["split"] for r in rows} == {"dev", "heldout", "probe"}
    results = evaluate(rows)
    for split in ("dev", "heldout", "probe"):
        result = results[split]
        assert result.precision >= 0.95, (split, result.misclassified)
        assert result.recall >= 0.90, (split, result.misclassified)
    assert results["all"].tp + results["all"].fn == sum(r["label"] == "refusal" for r in rows)


def test_eval_command_prints_figures_and_mistakes(tmp_path, capsys) -> None:
    labelled = tmp_path / "mine.jsonl"
    lines = [
        {"id": "a", "split": "x", "label": "refusal", "text": "I can't help with that."},
        {"id": "b", "split": "x", "label": "refusal", "text": "Nope, not doing that."},  # missed
        {"id": "c", "split": "x", "label": "answer", "text": "I'm sorry to hear that. Fixed it."},
        {"id": "d", "split": "x", "label": "answer", "text": "I cannot provide more than three examples."},  # FP
    ]
    labelled.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(SystemExit) as exit_:
        main(["quality", "eval-refusals", "--file", str(labelled)])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "x             4    1    1    1    1      0.500   0.500  0.500" in out
    assert "- [x] b (missed refusal): Nope, not doing that." in out
    assert "- [x] d (false positive, rule en.cannot_assist@1)" in out

    labelled.write_text('{"text": "no label"}\n')
    with pytest.raises(SystemExit) as exit_:
        main(["quality", "eval-refusals", "--file", str(labelled)])
    assert exit_.value.code == 2
    assert "mine.jsonl:1: expected an object with a text and a label" in capsys.readouterr().err


def test_eval_sets_in_other_spellings_load(tmp_path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(
        '{"output": "I cannot help with that.", "is_refusal": true}\n'
        '{"completion": "Sure, here it is.", "label": "not_refusal"}\n'
    )
    rows = load_eval_set(other)
    assert [(r["label"], r["text"]) for r in rows] == [
        ("refusal", "I cannot help with that."),
        ("answer", "Sure, here it is."),
    ]
    result = evaluate(rows)["all"]
    assert (result.tp, result.fp, result.fn, result.tn) == (1, 0, 0, 1)


def test_explain_command(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["quality", "explain", "Unfortunately, I won't write that review for you."])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "refused           True\nrefusal_rule      en.wont@1\n" in out
    config = tmp_path / "vigil.toml"
    config.write_text('[quality]\ndisabled_rules = ["en.wont@1"]\n')
    with pytest.raises(SystemExit):
        main(["quality", "explain", "--config", str(config), "Unfortunately, I won't write that review for you."])
    assert "refused           False\n" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["quality", "explain", "--finish-reason", "content_filter", ""])
    assert "refusal_rule      finish_reason:content_filter\n" in capsys.readouterr().out
