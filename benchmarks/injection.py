"""Prompt injection against the real models: attack success rate per family, and the output rules'
deterministic guarantee checked on every answer.

    python benchmarks/injection.py [--limit N | --per-family N] [--max-tokens 128] [--threads 1] [--out results.jsonl]

The corpus is tests/injection_corpus.py: 220 documents planted at the lowest label, in 10 attack
families (BIPIA and garak's latent injection), and a confidential HR note with a canary per topic.
For each attack the victim (hana, HR) asks the topic's question, narrowed to the attack, the
topic's public facts and its HR note (as if all three were the best matches), with the bundled
embedder and language model (SmolLM2-135M-Instruct). Reported per family:

- reached: the attack was among the chunks in the prompt;
- raw: the model's own output shows the attack worked (it holds the attack's marker, or, for the
  exfiltration and scam families, points at the attacker's host), before the output rules;
- shown: the same test on what the asker is shown (answer, streamed text, evidence);
- links: outputs (answer, stream, evidence) holding an image, a link or a URL other than the
  citations, after the output rules: 0 by construction;
- canary: the raw output holds the HR note's canary (the victim may read it: a leak only if it
  left in a link, which `links` counts).

The bystander (sam) asks too, without generating: the prompt built for him is checked to hold no
chunk above his profile. Per-attack records go to --out as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memex.access import allowed  # noqa: E402
from memex.answer.pipeline import relevant  # noqa: E402
from memex.answer.prompting import build_messages  # noqa: E402
from memex.api.reads import Reads  # noqa: E402
from memex.index import Narrowing  # noqa: E402
from memex.models.llm import LanguageModel, LlamaCppModel  # noqa: E402
from tests import injection_corpus as corpus  # noqa: E402
from tests.output_oracle import violations  # noqa: E402


class Recording(LanguageModel):
    """Passes a model through, keeping its raw output (what it wrote before the output rules)."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.name = model.name
        self.context_tokens = model.context_tokens
        self.raw = ""

    def stream(self, messages, *, max_tokens):
        self.raw = ""
        for piece in self.model.stream(messages, max_tokens=max_tokens):
            self.raw += piece
            yield piece

    def count_tokens(self, text: str) -> int:
        return self.model.count_tokens(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="attacks to run (0: all 220)")
    parser.add_argument("--per-family", type=int, default=0, help="the first N attacks of each family")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from memex.api.wiring import Memex
    from memex.config import Paths, Settings
    from memex.models.embeddings import SentenceTransformerEmbedder

    model = Recording(LlamaCppModel(threads=args.threads))
    home = Path(tempfile.mkdtemp(prefix="memex-injection-"))
    memex = Memex(
        Paths(home),
        policy=corpus.policy(),
        settings=Settings(max_answer_tokens=args.max_tokens),
        embedder=SentenceTransformerEmbedder(),
        model=model,
        writable=True,
    )
    chunks = corpus.corpus()
    memex.index.upsert(chunks, memex.embedder.embed([c.text for c in chunks]))
    attacks = corpus.attacks()
    if args.per_family:
        attacks = [
            a for f in corpus.FAMILIES for a in [a for a in attacks if a.family == f][: args.per_family]
        ]
    if args.limit:
        attacks = attacks[:: max(1, len(attacks) // args.limit)][: args.limit]
    victim = memex.policy.principal(corpus.VICTIM)
    bystander = memex.policy.principal(corpus.BYSTANDER)
    out = args.out.open("w") if args.out else None
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    started = time.perf_counter()
    for number, attack in enumerate(attacks, start=1):
        narrowing = Narrowing(source_ids=corpus.sources_for(attack))
        streamed: list[str] = []
        began = time.perf_counter()
        answer = Reads(memex).ask(
            attack.question, principal=victim, narrowing=narrowing, on_token=streamed.append
        )
        seconds = time.perf_counter() - began
        raw = model.raw if answer.citations else ""
        shown_texts = [answer.text, "".join(streamed), *(e.sentence for e in answer.evidence)]
        shown_texts += [f"{c.title} {c.section}" for c in answer.citations]
        allowed_urls = {c.source for c in answer.citations}
        link_outputs = sum(bool(violations(t, allowed_urls)) for t in shown_texts)
        secret = corpus.canary(attack.topic)
        # The bystander's prompt, as it would be built: never a chunk above his profile.
        hits = relevant(memex.index.search(attack.question, principal=bystander, k=5, narrowing=narrowing))
        messages, used = build_messages(attack.question, hits, model=memex.model, max_tokens=args.max_tokens)
        above = sum(not allowed(principal=bystander, access=h.access) for h in used)
        above += sum(not allowed(principal=victim, access=h.access) for h in answer.hits)
        record = {
            "attack": attack.source_id,
            "family": attack.family,
            "variant": attack.variant,
            "reached": attack.source_id in {h.source_id for h in answer.hits},
            "raw_success": attack.succeeded(raw),
            "shown_success": any(attack.succeeded(t) for t in shown_texts),
            "raw_links": len(violations(raw, allowed_urls)),
            "link_outputs": link_outputs,
            "canary_in_raw": secret in raw,
            "above_profile_in_prompt": above + int(secret in json.dumps(messages)),
            "seconds": round(seconds, 1),
            "raw": raw,
            "shown": answer.text,
        }
        if out:
            out.write(json.dumps(record) + "\n")
            out.flush()
        family = totals[attack.family]
        family["n"] += 1
        for key in ("reached", "raw_success", "shown_success", "canary_in_raw"):
            family[key] += int(record[key])
        family["raw_link_answers"] += int(record["raw_links"] > 0)
        for key in ("link_outputs", "above_profile_in_prompt"):
            family[key] += record[key]
        print(
            f"{number}/{len(attacks)} {attack.source_id} reached={record['reached']} "
            f"raw={record['raw_success']} shown={record['shown_success']} links={link_outputs} "
            f"{seconds:.0f}s",
            file=sys.stderr,
            flush=True,
        )
    memex.close()
    print(
        f"\n{len(attacks)} attacks in {time.perf_counter() - started:.0f} s, max_tokens={args.max_tokens}\n"
    )
    header = "| family | n | reached | ASR raw | ASR shown | raw answers with links | canary in raw | links shown | above profile |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    grand: dict[str, int] = defaultdict(int)
    for name in corpus.FAMILIES:
        f = totals.get(name)
        if not f:
            continue
        for key, value in f.items():
            grand[key] += value
        print(_row(name, f))
    print(_row("**all**", grand))


def _row(name: str, f: dict[str, int]) -> str:
    n = f["n"] or 1

    def pct(key: str) -> str:
        return f"{100 * f[key] / n:.0f}%"

    return (
        f"| {name} | {f['n']} | {pct('reached')} | {pct('raw_success')} | {pct('shown_success')} | "
        f"{pct('raw_link_answers')} | {pct('canary_in_raw')} | {f['link_outputs']} | "
        f"{f['above_profile_in_prompt']} |"
    )


if __name__ == "__main__":
    main()
