"""Command line: ``implicitreg run``, ``bench``, ``book``, ``time-backends``,
``gpu-edition``, ``register``, ``diagnose-penalty`` and ``golden``.

An entry point: the ``IMPLICITREG_*`` variables are read here (through
:meth:`~implicitreg.runs.execution.ExecConfig.from_env`, options over them) and passed
on as one :class:`~implicitreg.runs.execution.ExecConfig` value."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Sequence, get_type_hints

from .engine.config import ConfigError, RunConfig, config_fields_doc
from .runs.execution import ExecConfig, ExecError


def _parse_value(text: str, hint: Any, name: str) -> Any:
    s = str(hint)
    if text.lower() == "none" and "None" in s:
        return None
    try:
        if "tuple" in s:
            return tuple(int(v) for v in text.replace("x", ",").split(",") if v)
        if "bool" in s:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if "float" in s:
            return float(text)
        if "int" in s:
            return int(text)
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')} = {text!r} is not allowed: expected "
                          f"{hint}") from None
    return text


def _add_run_args(p: argparse.ArgumentParser) -> None:
    docs = config_fields_doc()
    for f in dataclasses.fields(RunConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                       metavar="VALUE", help=f"{docs.get(f.name, '')} (default: {f.default!r})")
    p.add_argument("--store", default=None, help="run-store folder (default: results/runs)")
    p.add_argument("--force", action="store_true", help="retrain even if stored")


def _config_from_args(ns: argparse.Namespace) -> RunConfig:
    hints = get_type_hints(RunConfig)
    values = {}
    for f in dataclasses.fields(RunConfig):
        raw = getattr(ns, f.name)
        if raw is not None:
            values[f.name] = _parse_value(raw, hints[f.name], f.name)
    return RunConfig(**values)


def _exec_config(args: argparse.Namespace) -> ExecConfig:
    """The shell's ``IMPLICITREG_*`` settings with the command's options over them: the
    one place the command line reads them, for the commands that run something."""
    return ExecConfig.from_env(**{f: getattr(args, f, None)
                                  for f in ("backend", "workers", "ray_address", "ray_gpus")})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="implicitreg", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="train one configuration; print a JSON summary")
    _add_run_args(p_run)
    p_bench = sub.add_parser("bench", help="measure step costs side by side; print JSON")
    p_bench.add_argument("--device", default="cpu")
    p_bench.add_argument("--models", default="mlp,cnn")
    p_bench.add_argument("--repeats", type=int, default=10)
    p_bench.add_argument("--kernel-march", default="native",
                         help="-march of the winsorization kernel's build, e.g. haswell "
                         "for the AVX2 build on an AVX-512 machine")
    p_book = sub.add_parser("book", help="execute the chapters with papermill and build")
    p_book.add_argument("--profile", default="ci")
    p_book.add_argument("--params", default=None, help="YAML file of parameter overrides")
    p_book.add_argument("--only", default=None, help="comma-separated chapter names")
    p_book.add_argument("--no-build", action="store_true", help="execute only")
    p_book.add_argument("--timeout", type=int, default=None, help="per-cell timeout (s)")
    p_book.add_argument("--backend", choices=["local", "ray"], default=None,
                        help="where the chapters' runs train (default: local)")
    p_book.add_argument("--workers", type=int, default=None,
                        help="local worker processes for the chapters' runs (default: 1, or a "
                             "chapter's entry in the workers section of "
                             "notebooks/budgets.yaml)")
    p_book.add_argument("--ray-address", default=None,
                        help="Ray cluster address, e.g. ray://head:10001 (default: a "
                             "local Ray instance)")
    p_book.add_argument("--ray-gpus", type=float, default=None,
                        help="GPUs each Ray task asks for (default: 0)")
    p_time = sub.add_parser("time-backends",
                            help="time one chapter's runs under each executor; write JSON")
    p_time.add_argument("chapter")
    p_time.add_argument("--profile", default="ci")
    p_time.add_argument("--modes", default="sequential,local,workers,ray")
    p_time.add_argument("--ray-address", default=None)
    p_gpu = sub.add_parser("gpu-edition", help="bench, then train the chapters' gpu "
                           "profiles into results/gpu (resumable; stops at a deadline)")
    p_gpu.add_argument("--deadline", type=float, default=480.0,
                       help="seconds from now after which runs checkpoint and stop")
    p_gpu.add_argument("--only", default=None, help="comma-separated chapters")
    p_gpu.add_argument("--dry-run", action="store_true",
                       help="the smoke profile on any device into _build/gpu-dry-run")
    p_gpu.add_argument("--no-bench", action="store_true",
                       help="skip the bench (a window that resumes an earlier one)")
    p_gpu.add_argument("--out", default=None, help="also pack the results into "
                       "OUT/gpu-edition.tar.gz")
    p_reg = sub.add_parser("register", help="register a chapter's design (criteria, "
                           "revisions, profile) in results/registry.json before its runs")
    p_reg.add_argument("chapter")
    p_reg.add_argument("--profile", default="workstation",
                       help="the committed profile whose parameters are registered")
    p_diag = sub.add_parser("diagnose-penalty", help="trace a penalized headline run's "
                            "curvature against 2/ε and replay the updates before its "
                            "collapse (writes results/workstation/divergence/)")
    p_diag.add_argument("--seed", type=int, required=True)
    p_diag.add_argument("--lam", type=float, default=None,
                        help="λ (absolute units; needed unless --sgd-step-norms)")
    p_diag.add_argument("--until", type=int, default=1200, help="last traced update")
    p_diag.add_argument("--out", default="results/workstation/divergence")
    p_diag.add_argument("--replay-from", type=int, default=None,
                        help="replay from the checkpoint at this update (default: before "
                             "the first collapse)")
    p_diag.add_argument("--variants", default=None, help="comma-separated replay variants")
    p_diag.add_argument("--sgd-step-norms", action="store_true",
                        help="instead, record the SGD arm's unclipped step lengths at the "
                             "headline cell for --seed (what the clipping norm is set against)")
    p_gold = sub.add_parser("golden", help="check (or --write) the golden runs of "
                            "tests/golden/ against the engine")
    p_gold.add_argument("--write", action="store_true",
                        help="regenerate the files (after a deliberate NUMERICS_VERSION bump)")
    p_gold.add_argument("--spread", action="store_true",
                        help="measure each case under every instruction-set setting and "
                        "thread count, and set the files' tolerances from it")
    p_gold.add_argument("--portable", action="store_true",
                        help="check in a process forced to the lowest instruction set "
                        "and one thread")
    p_gold.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "run":
            from .runs.runner import run

            cfg = _config_from_args(args)
            result = run(cfg, store=args.store, force=args.force,
                         exec_config=_exec_config(args))
            print(json.dumps({"key": result.key, "cached": result.cached, **result.summary}))
        elif args.cmd == "bench":
            from .bench import main as bench_main

            bench_main(args.device, tuple(m for m in args.models.split(",") if m),
                       args.repeats, args.kernel_march)
        elif args.cmd == "time-backends":
            from .book.timing import time_backends

            time_backends(args.chapter, args.profile,
                          [m for m in args.modes.split(",") if m], ray_address=args.ray_address,
                          exec_config=_exec_config(args))
        elif args.cmd == "gpu-edition":
            from pathlib import Path

            from .book.gpu_edition import gpu_edition

            gpu_edition(args.only.split(",") if args.only else None, args.deadline,
                        args.dry_run, Path(args.out) if args.out else None,
                        bench=not args.no_bench, exec_config=_exec_config(args))
        elif args.cmd == "register":
            from .chapters import registry

            entry = registry.register(args.chapter, args.profile)
            print(f"registered {entry['chapter']} at {entry['profile']}: design "
                  f"{entry['fingerprint']} at {entry['time']} (commit {entry['commit'][:12]}); "
                  f"commit {registry.REGISTRY} to keep it")
        elif args.cmd == "diagnose-penalty":
            from .chapters import headline

            _exec_config(args).apply()  # the replays read the data where a run would
            if args.sgd_step_norms:
                headline.sgd_step_norms(headline.profile("workstation"), args.out, args.seed)
            elif args.lam is None:
                parser.error("diagnose-penalty needs --lam (or --sgd-step-norms)")
            else:
                headline.diagnose(headline.profile("workstation"), args.out, args.seed,
                                  args.lam, until=args.until, replay_from=args.replay_from,
                                  **({"variants": args.variants.split(",")} if args.variants
                                     else {}))
        elif args.cmd == "golden":
            from . import golden

            if args.write:
                golden.write(args.cases or None)
            elif args.spread:
                measured = golden.measure_spread(args.cases or None)
                golden.write_tolerances(measured)
                print(json.dumps({k: measured[k] for k in ("spread", "batched", "torch",
                                                           "cpu")}, indent=1))
            elif args.portable:
                bad = golden.check_setting(*golden.PORTABLE, args.cases or None)
                print("\n".join(bad) or "golden runs reproduce at "
                      f"{golden.PORTABLE[0]} / {golden.PORTABLE[1]} thread")
                return 1 if bad else 0
            else:
                bad = golden.check(args.cases or None)
                return 1 if bad else 0
        elif args.cmd == "book":
            from .book.driver import build_book
            from .runs.execution import in_environment

            ex = _exec_config(args)
            build_book(profile=args.profile, params_file=args.params,
                       only=args.only.split(",") if args.only else None,
                       build=not args.no_build, cell_timeout=args.timeout,
                       exec_config=ex,
                       worker_hints=args.workers is None and not in_environment("workers"))
    except (ConfigError, ExecError) as exc:
        print(f"implicitreg: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # data missing, a notebook failed, ...
        from .book.parameters import BookError
        from .engine.data import DataError

        from .chapters.registry import RegistrationError

        if isinstance(exc, (DataError, BookError, RegistrationError)):
            print(f"implicitreg: error: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
