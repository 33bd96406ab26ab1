"""``morphstudio directions fit|pca|sefa|list|show``: find, list and look at attribute directions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from morphstudio.commands import DEVICE_HELP
from morphstudio.errors import RenderError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="fit, find (PCA / SeFa), list and show attribute directions",
                       description="Attribute directions with provenance (see README: Attribute directions).")
    dsub = p.add_subparsers(dest="directions_command", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--model", default="builtin:dcgan-faces64", help="checkpoint or builtin:NAME")
        q.add_argument("--device", default=None, help=DEVICE_HELP)

    f = dsub.add_parser("fit", help="sample faces, label them, fit a direction (set semantics)")
    common(f)
    f.add_argument("--labeller", required=True, help="geometry, age-gender, all, module:function, csv:PATH "
                   "(csv: labels for seeds; the file's seeds are used, -n and --seed do not apply)")
    f.add_argument("--label", required=True, help="which label to fit (e.g. smile)")
    f.add_argument("--method", default="ridge", help="ridge, linear, logistic, svm or meandiff (default ridge)")
    f.add_argument("-n", "--samples", type=int, default=1000, help="faces to sample (default 1000)")
    f.add_argument("--fraction", type=float, default=0.3, help="top/bottom fraction for logistic/svm/meandiff")
    f.add_argument("--seed", type=int, default=0, help="first seed")
    f.add_argument("--layers", default=None, metavar="START:STOP",
                   help="a direction for this latent range only (num_ws > 1 models): fitted on style-mixed faces "
                   "and applied only there by scenes, edit and live (default: all latents)")
    f.add_argument("--condition", default="", metavar="NAMES",
                   help="comma-separated directions (names or files) to project out: InterFaceGAN's conditional "
                   "boundary; prints cosines before and after")
    f.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.npz")
    f.set_defaults(func=run_fit)

    an = dsub.add_parser("analogy", help="analogy grid PNG: a top-left, b top-right, c bottom-left, c + b - a "
                         "bottom-right, the rest interpolated")
    common(an)
    for name in ("a", "b", "c"):
        an.add_argument(f"--{name}", type=int, required=True, metavar="SEED", help=f"seed of face {name}")
    an.add_argument("-n", type=int, default=5, help="grid size (default 5)")
    an.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    an.set_defaults(func=run_analogy)

    mp = dsub.add_parser("map", help="latent map PNG: faces placed by a PCA or t-SNE of their thumbnails")
    common(mp)
    mp.add_argument("--seeds", default="0-99")
    mp.add_argument("--method", choices=("pca", "tsne"), default="pca")
    mp.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png")
    mp.set_defaults(func=run_map)

    for name, helptext in (("pca", "GANSpace: principal components of sampled W (add semantics)"),
                           ("sefa", "SeFa: eigenvectors of the style weights of a layer range (add semantics)")):
        q = dsub.add_parser(name, help=helptext)
        common(q)
        q.add_argument("-k", "--components", type=int, default=8)
        q.add_argument("--layers", default=None, help="SeFa latent range START:STOP (default all)")
        q.add_argument("-o", "--output", type=Path, required=True, metavar="FOLDER",
                       help="writes NAME_0.npz ... and NAME_K.png sweep grids")
        q.set_defaults(func=run_unsupervised, method=name)

    ls = dsub.add_parser("list", help="the named directions of a model (shipped and your own)")
    ls.add_argument("--model", default="builtin:dcgan-faces64")
    ls.set_defaults(func=run_list)

    sh = dsub.add_parser("show", help="print a direction's provenance and write a sweep grid PNG")
    common(sh)
    sh.add_argument("direction", help="a name from the library or a file")
    sh.add_argument("--grid", type=Path, metavar="OUT.png", help="sweep grid: rows faces, columns strengths")
    sh.add_argument("--seeds", default="0-3")
    sh.add_argument("--strengths", default="-2,-1,0,1,2",
                    help="columns of the grid; write --strengths=-1,0,1 (with =: a leading minus looks like an option)")
    sh.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _generator(args: argparse.Namespace):  # noqa: ANN202
    from morphstudio.devices import resolve_device
    from morphstudio.generators.loading import load_generator

    return load_generator(args.model, device=resolve_device(args.device))


def _save_png(path: Path, grid: np.ndarray) -> None:
    from PIL import Image

    from morphstudio.files import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp)


def _layer_range(text: str | None) -> tuple[int, int] | None:
    """``--layers START:STOP`` as a pair (None when not given); its bounds are checked against the model later."""
    if not text:
        return None
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise RenderError(f"--layers: expected START:STOP such as 0:4, got {text!r}") from None
    return a, b


def _reference_row(name: str, model: str, space: object, row: int) -> np.ndarray:
    """``--condition NAME``'s unit direction at latent ``row`` (the row a fit is made on), shaped for the model
    like any applied direction; a reference that does not act there is refused (it cannot be conditioned on)."""
    from morphstudio.edit import directions as dirs
    from morphstudio.scene.yamlmap import Locator

    d = dirs.load(dirs.resolve(name, model, Path.cwd()), shown=name)
    unit = dirs.for_space(d, space, name, Locator(), ("--condition", name)).unit[row]  # type: ignore[arg-type]
    if not np.any(unit):
        raise RenderError(f"--condition {name}: this direction does not act on latent {row}, where the fit is made")
    return unit


def run_fit(args: argparse.Namespace) -> int:
    from morphstudio.edit import directions as dirs
    from morphstudio.edit.fit import MIX_OFFSET, check_layers, fit_direction, sample_labels, seed_labels
    from morphstudio.faces.cache import model_identity

    try:
        from morphstudio.edit.labels import get_labeller
    except ImportError:
        raise RenderError("directions fit: the labellers (morphstudio.edit.labels) are not installed in this "
                          "build") from None
    labeller = get_labeller(args.labeller)
    layers = _layer_range(args.layers)
    gen = _generator(args)
    a, b = check_layers(layers, gen.num_ws)
    if hasattr(labeller, "for_seeds"):  # csv: labels for seeds, no images to render
        if (a, b) != (0, gen.num_ws):
            raise RenderError(f"--layers {args.layers}: a csv: labeller labels whole faces by seed, so it cannot "
                              "tell what one latent range does; fit it for all latents")
        ws, y, skipped, seeds = seed_labels(gen, labeller, args.label)
        print(f"fit {args.label}: {len(y)} seeds labelled by {args.labeller}, {skipped} with an empty cell skipped")
    else:
        ws, y, skipped = sample_labels(gen, labeller, args.samples, seed=args.seed, label=args.label,
                                       layers=(a, b))
        seeds = [args.seed, args.seed + args.samples]
        print(f"fit {args.label}: {len(y)} faces labelled, {skipped} skipped (no face)")
    # Inside the range every latent row is the same face's: fit on the range's first row.
    fit = fit_direction(ws[:, a], y[:, 0], args.method, fraction=args.fraction, seed=args.seed)
    info = next(i for i in labeller.labels if i.name == args.label)
    conditioned: list[str] = []
    if args.condition:
        from morphstudio.edit.disentangle import condition

        refs = [n.strip() for n in args.condition.split(",") if n.strip()]
        ref_units = np.stack([_reference_row(r, args.model, gen.latent_space(), a) for r in refs])
        before = ref_units @ fit.unit
        new = condition(fit.unit, ref_units)
        cos_kept = float(new @ fit.unit)
        for r, c, ref in zip(refs, before, ref_units):
            print(f"cosine with {r}: {c:+.3f} before, {float(new @ ref):+.3f} after")
        # The same movement along the fitted direction per unit strength: strength keeps its label-std meaning.
        fit.unit, fit.scale = new, fit.scale / max(cos_kept, 1e-6)
        fit.intercept = fit.intercept / max(cos_kept, 1e-6)
        conditioned = refs
    prov = fit.provenance(model=args.model, model_fingerprint=model_identity(gen), method=args.method,
                          label=args.label, label_unit=info.unit, label_source=args.labeller, layers=[a, b],
                          n_skipped=skipped, space="w", conditioned_on=conditioned, seeds=seeds,
                          **({"mixed_seed_offset": MIX_OFFSET} if (a, b) != (0, gen.num_ws) else {}))
    dirs.save(args.output, fit.unit, prov)
    print(f"{args.output}: held-out {fit.metric} {fit.score:.3f}; strength 1 = {fit.label_std:.4g} {info.unit} "
          f"of {args.label} ({fit.scale:.4g} latent units); semantics set")
    return 0


def run_unsupervised(args: argparse.Namespace) -> int:
    from morphstudio.edit import directions as dirs
    from morphstudio.edit.grids import sweep_grid
    from morphstudio.edit.unsupervised import pca_directions, sefa_directions
    from morphstudio.faces.cache import model_identity

    gen = _generator(args)
    if args.method == "sefa":
        comps = sefa_directions(gen, args.components, _layer_range(args.layers))
    else:
        comps = pca_directions(gen, args.components)
    args.output.mkdir(parents=True, exist_ok=True)
    for i, (d, std, ev) in enumerate(zip(comps.directions, comps.stds, comps.explained)):
        path = args.output / f"{args.method}_{i}.npz"
        dirs.save(path, d, {"model": args.model, "model_fingerprint": model_identity(gen), "method": comps.method,
                            "component": i, "explained": float(ev), "scale": float(std),
                            "layers": list(comps.layers), "semantics": "add"})
        _save_png(path.with_suffix(".png"), sweep_grid(gen, d, float(std), [0, 1, 2], [-3, -1.5, 0, 1.5, 3]))
        print(f"{path}: component {i}, explained {ev:.3%}, strength 1 = {std:.4g} latent units")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from morphstudio.edit import directions as dirs

    lib = dirs.library(args.model)
    if not lib:
        print(f"no named directions for {dirs.model_key(args.model)} (searched "
              f"{', '.join(str(p) for p in dirs.library_dirs(args.model))})")
    for name, path in lib.items():
        prov = dirs.load(path).provenance
        print(f"{name:<14} {prov.get('method', '-'):<10} {prov.get('semantics', 'add'):<4} {path}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from morphstudio.commands import parse_seeds
    from morphstudio.edit import directions as dirs
    from morphstudio.edit.grids import sweep_grid

    path = dirs.resolve(args.direction, args.model, Path.cwd())
    d = dirs.load(path, shown=args.direction)
    print(f"direction   {path}")
    print(f"semantics   {d.semantics}")
    print(f"strength 1  {d.unit_strength()}")
    print(json.dumps(d.provenance, indent=2, sort_keys=True) if d.provenance else "provenance  none")
    if args.grid:
        try:
            strengths = [float(s) for s in args.strengths.split(",")]
        except ValueError:
            raise RenderError(f"--strengths: expected numbers like -2,0,2, got {args.strengths!r}") from None
        gen = _generator(args)
        scale = float(d.provenance["scale"]) if d.fitted else float(np.sqrt(np.mean(
            (gen.latent_space().map_z(np.random.RandomState(20240601).randn(256, gen.z_dim)) -
             gen.w_avg.detach().cpu().numpy()) ** 2)))
        _save_png(args.grid, sweep_grid(gen, d.unit, scale, parse_seeds(args.seeds), strengths))
        print(f"grid        {args.grid} (rows seeds {args.seeds}, columns strengths {args.strengths})")
    return 0


def run_analogy(args: argparse.Namespace) -> int:
    from morphstudio.edit.grids import analogy_grid
    from morphstudio.latent import z_from_seed

    if not 2 <= args.n <= 16:
        raise RenderError(f"-n: the grid is 2 to 16 faces wide, got {args.n}")
    gen = _generator(args)
    space = gen.latent_space()
    a, b, c = (space.map_z(z_from_seed(s, gen.z_dim)[None])[0] for s in (args.a, args.b, args.c))
    _save_png(args.output, analogy_grid(gen, a, b, c, n=args.n))
    print(f"wrote {args.output}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    from morphstudio.commands import parse_seeds
    from morphstudio.edit.grids import latent_map

    seeds = parse_seeds(args.seeds)
    if not 3 <= len(seeds) <= 2000:
        raise RenderError(f"--seeds: a map needs 3 to 2000 faces, got {len(seeds)}")
    _save_png(args.output, latent_map(_generator(args), seeds, method=args.method))
    print(f"wrote {args.output}")
    return 0
