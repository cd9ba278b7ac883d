"""`memex eval`: retrieval quality on BEIR question sets, or answer accuracy on questions with
known answers (--answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from memex.cli.output import AS_USER, JSON
from memex.cli.output import emit as _emit
from memex.cli.output import fail as _fail
from memex.errors import MemexError


def _open(policy: Optional[Path] = None, **kwargs):
    from memex.api.wiring import Memex

    return Memex.open(policy_path=policy, **kwargs)


def _note(line: str) -> None:
    typer.secho(line, err=True, dim=True)


def eval_command(
    ctx: typer.Context,
    dataset: Optional[Path] = typer.Argument(
        None, help="A BEIR-format folder: queries.jsonl, qrels/SPLIT.tsv, and corpus.jsonl."
    ),
    answers: Optional[Path] = typer.Option(
        None,
        "--answers",
        metavar="FILE.jsonl",
        help="Measure answers instead: questions with accepted answers, asked through `memex ask`.",
    ),
    split: str = typer.Option("test", "--split", help="Which qrels file to use (qrels/SPLIT.tsv)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    mode: list[str] = typer.Option(["dense", "lexical", "hybrid"], "--mode", help="Search modes to compare."),
    model: Optional[str] = typer.Option(
        None, "--model", metavar="NAME|PATH.gguf", help="With --answers: the model that answers."
    ),
    embedding_model: Optional[str] = typer.Option(
        None,
        "--embedding-model",
        metavar="NAME|FOLDER",
        help="With a corpus: minilm-l6-v2 (the default), minilm-l6-v2-int8, or a model folder.",
    ),
    as_user: Optional[str] = AS_USER,
    as_json: bool = JSON,
) -> None:
    """Measure retrieval: nDCG@10, Recall@10/100, MRR@10 per search mode; or, with --answers,
    answer accuracy, citation accuracy, abstention, unsupported facts and speed.

    With corpus.jsonl, the corpus is ingested into a throwaway home through the full pipeline.
    Without it, the questions run against your own index (qrels name paths or source ids)."""
    if answers is not None:
        policy = ctx.find_root().params.get("policy")
        _eval_answers(answers, policy=policy, limit=limit, model=model, as_user=as_user, as_json=as_json)
        return
    if dataset is None:
        _fail(MemexError("give a BEIR folder, or --answers FILE.jsonl"), as_json)
    from memex.eval import retrieval as evaluation
    from memex.ingest.progress import RichProgress

    try:
        with RichProgress(enabled=not as_json) as progress:
            if (dataset / "corpus.jsonl").is_file():
                from memex.models.choice import configured_embedder

                total = len(evaluation.load_questions(dataset, split=split, limit=limit).queries) * len(mode)
                progress.begin("questions", total)
                result = evaluation.evaluate_corpus(
                    dataset,
                    embedder=configured_embedder(embedding_model),
                    split=split,
                    limit=limit,
                    modes=mode,
                    ingest_progress=progress,
                    query_progress=lambda n: progress.advance("questions", n),
                )
            else:
                questions = evaluation.load_questions(dataset, split=split, limit=limit)
                by_path = any("/" in d for rel in questions.qrels.values() for d in rel)
                with _open(ctx.find_root().params.get("policy")) as memex:
                    from memex.api.reads import Reads

                    principal, actor = memex.cli_principal(as_user)
                    reads = Reads(memex)
                    scores = evaluation.evaluate_index(
                        lambda query, k, how: reads.search(
                            query,
                            principal=principal,
                            actor=actor,
                            channel="eval",
                            k=k,
                            mode=how,
                            dates=False,
                        ),
                        questions,
                        modes=mode,
                        doc_id=(lambda hit: hit.uri) if by_path else (lambda hit: hit.source_id),
                    )
                result = {
                    "dataset": str(dataset),
                    "split": split,
                    "queries": len(questions.queries),
                    "modes": scores,
                }
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(result)
        return
    typer.echo(f"{result['dataset']} ({result['split']}): {result['queries']} questions")
    if "documents" in result:
        typer.echo(
            f"ingested {result['documents']} documents as {result['chunks']} chunks in {result['ingest_seconds']} s"
        )
    typer.echo(f"{'mode':8} {'nDCG@10':>8} {'R@10':>8} {'R@100':>8} {'MRR@10':>8}")
    for name, m in result["modes"].items():
        typer.echo(
            f"{name:8} {m['ndcg@10']:8.3f} {m['recall@10']:8.3f} {m['recall@100']:8.3f} {m['mrr@10']:8.3f}"
        )


def _eval_answers(
    path: Path,
    *,
    policy: Optional[Path],
    limit: Optional[int],
    model: Optional[str],
    as_user: Optional[str],
    as_json: bool,
):
    from memex.eval import answers as answer_eval

    try:
        questions = answer_eval.load_answer_set(path)[:limit]
        with _open(policy, model_path=model) as memex:
            memex.on_note = _note

            from memex.api.reads import Reads

            reads = Reads(memex)

            def ask(question, on_token):
                principal, actor = memex.cli_principal(question.as_user or as_user)
                return reads.ask(
                    question.question, principal=principal, on_token=on_token, actor=actor, channel="eval"
                )

            def done(outcome) -> None:
                if not as_json:
                    mark = "ok " if outcome.score(True)["correct"] else "-- "
                    typer.echo(f"{mark}{outcome.question.id}: {' '.join(outcome.text.split())[:150]}")

            outcomes = answer_eval.run_questions(questions, ask, on_done=done)
            summary = answer_eval.summarise(outcomes)
            summary["model"] = memex.model.name
    except MemexError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"set": str(path), "summary": summary, "questions": [o.to_json() for o in outcomes]})
        return
    typer.echo(f"\n{path}: {summary['questions']} questions, model {summary['model']}")
    typer.echo(f"{'':12} {'accuracy':>9} {'cited':>7} {'declined':>9} {'unsupported':>12}")
    for name in ("checked", "unchecked"):
        row = summary[name]
        cells = [
            row["accuracy"],
            row["citation_accuracy"],
            row["abstention_accuracy"],
            row["unsupported_shown_rate"],
        ]
        typer.echo(
            f"{name:12} "
            + " ".join(
                f"{'-' if v is None else f'{v:.3f}':>{w}}" for v, w in zip(cells, (9, 7, 9, 12), strict=True)
            )
        )
    speed = summary["seconds_per_answer"]
    typer.echo(
        f"seconds per answer: mean {speed['mean']}, p50 {speed['p50']}; first word p50 {summary['first_word_seconds_p50']} s"
    )
