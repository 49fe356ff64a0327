"""``denoiser models``: list, inspect, rename, remove, import, export and sample the bundled and library models.

The library work itself is the engine's (:mod:`denoiser.modelstore`, :mod:`denoiser.modelfile`); this module
parses the arguments and prints: listings and ``info`` on stdout, the library's place as a note on stderr,
what an action did on stdout unless ``-q``. Those modules load torch, so they are imported inside the commands:
``denoiser --help`` answers without them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from denoiser.cli_common import EXIT_OK, Console, at_terminal, confirm, positive_int
from denoiser.errors import DenoiserError
from denoiser.formatting import size_text
from denoiser.train_request import MINUTES_STEP_CAP


def add_models_parser(commands: argparse._SubParsersAction) -> None:
    """``denoiser models [list|info|rename|remove|import|export|sample]``; no action means ``list``."""
    models = commands.add_parser("models", help="list, inspect, rename, remove, import, export and sample models",
                                 description="Manage the bundled models and your model library. "
                                             "With no action, list them.")
    models.add_argument("--json", action="store_true", help="print JSON (list, info)")
    actions = models.add_subparsers(dest="models_action", metavar="ACTION")
    # SUPPRESS: a sub-parser's own default would overwrite "models --json list"'s flag.
    listing = actions.add_parser("list", help="list the bundled and saved models (the default action)")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    info = actions.add_parser("info", help="everything known about one model")
    info.add_argument("model", metavar="NAME|PATH", help="'default', a library name, or a .safetensors path")
    info.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    rename = actions.add_parser("rename", help="rename a model in your library")
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    remove = actions.add_parser("remove", help="delete a model from your library")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    imp = actions.add_parser("import", help="copy a .safetensors model file into your library")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--name", default=None, help="library name (default: the file's name)")
    export = actions.add_parser("export", help="write a model as one self-contained .safetensors file")
    export.add_argument("name", metavar="NAME", help="'default' or a library name")
    export.add_argument("destination", metavar="DEST", help="a folder, or a file name ending in .safetensors")
    sample = actions.add_parser("sample", help="decode random latents of a variational model into images",
                                description="Decode draws from a variational model's prior (a unit Gaussian over "
                                            "its latents): what the model takes images to look like. Other "
                                            "families have no prior to draw from.")
    sample.add_argument("name", metavar="NAME|PATH", help="a variational model: a library name or a .safetensors path")
    sample.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="image file for the samples, in a grid (e.g. samples.png); never overwritten")
    sample.add_argument("--count", type=positive_int, default=1, help="how many images (default 1)")
    sample.add_argument("--size", type=positive_int, default=64, help="edge of each image in pixels (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the random latents (default 0)")


def _models_list(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import describe, list_models, user_models_dir

    infos = list_models()
    if args.json:
        console.result(json.dumps([{**i.to_json_dict(), "path": str(i.path), "bundled": i.bundled} for i in infos],
                                  indent=2))
        return EXIT_OK
    for info in infos:
        console.result(describe(info))
        if info.trained_on:
            console.result(f"    trained on {info.trained_on}")
    console.note(f"({len(infos)} model{'' if len(infos) == 1 else 's'}; your library is {user_models_dir()})")
    return EXIT_OK


def _models_info(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import model_info, model_size_bytes

    info = model_info(args.model)
    size = model_size_bytes(info)
    if args.json:
        console.result(json.dumps({**info.to_json_dict(), "path": str(info.path), "bundled": info.bundled,
                                   "size_bytes": size}, indent=2))
        return EXIT_OK
    lines = [f"name:        {info.name}" + (" (bundled)" if info.bundled else ""), f"family:      {info.family}"]
    if info.description:
        lines.append(f"description: {info.description}")
    lines.append(f"config:      {json.dumps(info.config, sort_keys=True)}")
    lines.append(f"trained on:  {info.trained_on or 'unknown'}")
    training = dict(info.training)
    # "steps" is the run's upper bound; with a time budget "steps_done" is what it trained.
    planned, done = training.pop("steps", None), training.pop("steps_done", None)
    steps = done if done is not None else planned
    seconds, command = training.pop("seconds", None), training.pop("command", "")
    summary = [f"{steps} steps" if steps is not None else "", f"{seconds} s" if seconds is not None else ""]
    minutes = training.get("minutes")
    timed = isinstance(minutes, (int, float)) and minutes > 0
    if timed:
        summary.append(f"in a budget of {minutes:g} min")
    # A time-budgeted run's step bound is the internal cap unless the user set one: shown only then.
    internal_cap = timed and isinstance(planned, int) and planned >= MINUTES_STEP_CAP
    if done is not None and planned is not None and planned != done and not internal_cap:
        summary.append(f"of at most {planned}")
    lines.append(f"training:    {', '.join(part for part in summary if part) or 'unknown'}")
    if command:
        lines.append(f"  command:   {command}")
    for key in sorted(training):
        lines.append(f"  {key}: {json.dumps(training[key], sort_keys=True)}")
    validation = dict(info.validation)
    psnr = validation.pop("psnr", None)
    if isinstance(psnr, (int, float)):
        sigma = validation.pop("sigma", None)
        at = f" at sigma {sigma}" if sigma is not None else ""
        lines.append(f"validation:  PSNR {psnr:.2f} dB{at}")
    else:
        lines.append("validation:  none recorded" if not validation else "validation:")
    for key in sorted(validation):
        lines.append(f"  {key}: {validation[key] if isinstance(validation[key], str) else json.dumps(validation[key])}")
    apart = int(info.config.get("noise_channels", 1)) == 2
    lines.append("noise input: " + ("luminance and colour noise apart" if apart else
                                    "one level for luminance and colour (the colour amount acts with the luminance)"))
    lines.append(f"size:        {size_text(size)} ({size} bytes)")
    lines.append(f"path:        {info.path}")
    console.result("\n".join(lines))
    return EXIT_OK


def _models_rename(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import rename_model

    path = rename_model(args.old, args.new)
    console.report(f"renamed {args.old} to {args.new} ({path})")
    return EXIT_OK


def _models_remove(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import library_model_path, remove_model

    name = args.name
    path = library_model_path(name)  # unknown and bundled names fail before anything is asked
    if not args.yes:
        if not at_terminal():
            raise DenoiserError(f"not removing {name}: stdin is not a terminal, so confirm with --yes")
        if not confirm(f"remove {name}?"):
            console.report(f"kept {name} (nothing removed)")
            return EXIT_OK
    remove_model(name)
    console.report(f"removed {name} ({path} and its .json)")
    return EXIT_OK


def _models_import(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import import_model

    info = import_model(args.file, args.name)
    console.report(f"imported {args.file} as {info.name} ({info.family}; {info.path})")
    return EXIT_OK


def _models_export(args: argparse.Namespace, console: Console) -> int:
    from denoiser.modelstore import export_model

    path = export_model(args.name, args.destination)
    console.report(f"exported {args.name} to {path}")
    return EXIT_OK


def _models_sample(args: argparse.Namespace, console: Console) -> int:
    from denoiser.prior_samples import write_samples

    path, info = write_samples(args.name, args.output, count=args.count, size=args.size, seed=args.seed)
    console.report(f"wrote {args.count} sample(s) of {info.name}, {args.size}x{args.size} each (seed {args.seed}), "
                   f"to {path}")
    return EXIT_OK


_ACTIONS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "list": _models_list, "info": _models_info, "rename": _models_rename, "remove": _models_remove,
    "import": _models_import, "export": _models_export, "sample": _models_sample,
}
"""Each ``denoiser models`` action and what runs it (given the arguments and the console); returns the exit
status."""


def cmd_models(args: argparse.Namespace) -> int:
    """Run ``denoiser models [ACTION]``; returns the exit status."""
    action = args.models_action or "list"
    if action not in _ACTIONS:
        raise DenoiserError(f"unknown models action {action!r}")
    return _ACTIONS[action](args, Console.for_args(args))
