"""``python -m compress``: run the compression pipeline and print the output directory."""

from __future__ import annotations

import argparse
import sys

from .importer import load_onnx
from .pipeline import config_for, run
from .train import AUGMENTATIONS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m compress", description=__doc__)
    p.add_argument("--dataset", default="digits", choices=["digits", "fashion", "mnist", "kmnist"])
    p.add_argument("--model", default="lenet300", choices=["lenet300", "lenet5"])
    p.add_argument("--data-dir", help="directory with the four IDX files (gzip or raw)")
    p.add_argument(
        "--data",
        metavar="FILE.npz",
        help="your data: x_train, y_train, x_test, y_test (x real, >= 0, (n, features) or "
        "(n, C, H, W); y integer labels 0..classes-1); replaces --dataset (docs/api.md)",
    )
    p.add_argument(
        "--model-file",
        metavar="MODEL.pt",
        help="your trained network: torch.save(model) or TorchScript (a state_dict needs "
        "--arch); the pipeline starts from its weights (docs/api.md)",
    )
    p.add_argument(
        "--arch",
        help='the layers of a state_dict --model-file, e.g. "linear 30 16, relu, linear 16 2"',
    )
    p.add_argument(
        "--onnx",
        metavar="MODEL.onnx",
        help="your trained network as ONNX (e.g. torch.onnx.export): the same layers as "
        "--model-file takes, as Gemm/MatMul, Conv, Relu, MaxPool, Flatten/Reshape (docs/api.md)",
    )
    p.add_argument("--out", help="output directory (default build/compress/<dataset>_<model>)")
    p.add_argument(
        "--epochs",
        type=int,
        help="float training epochs (with --model-file or --onnx: further epochs on its weights, "
        "default 0)",
    )
    p.add_argument("--finetune-epochs", type=int, help="epochs of each fine-tuning phase")
    p.add_argument("--batch", type=int)
    p.add_argument("--l1", type=float, help="L1 regularisation weight during float training")
    p.add_argument(
        "--lp",
        type=float,
        help="L_p regularisation weight during float training (sum of |w|^p, 0 < p < 1)",
    )
    p.add_argument("--lp-p", type=float, help="exponent p of --lp (default 0.5)")
    p.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        help="training-time augmentation of the float training (random shifts by up to 2 px "
        "with zero fill, horizontal flips)",
    )
    p.add_argument(
        "--finetune-augment",
        choices=AUGMENTATIONS,
        help="the same for the fine-tuning phases (Taylor steps, pruning rounds, centroids, "
        "power of two, biases)",
    )
    p.add_argument("--train-schedule", choices=["constant", "cosine"], help="float training LR")
    p.add_argument(
        "--finetune-schedule",
        choices=["constant", "cosine"],
        help="each fine-tuning phase's learning rate (Taylor steps and pruning rounds)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        help="lenet5: epochs of quantisation-aware fine-tuning after the calibration (the "
        "integer forward in training, straight-through; 0: none)",
    )
    p.add_argument("--qat-lr", type=float, help="its learning rate (cosine to 0)")
    p.add_argument(
        "--qat-weights",
        choices=["on", "off"],
        help="whether it trains the power-of-two weights too (through their snapping), or only "
        "the biases",
    )
    p.add_argument(
        "--distill",
        type=float,
        help="weight in (0, 1] of knowledge distillation from the float model in every "
        "fine-tuning phase before the calibration (0: off, the default)",
    )
    p.add_argument("--distill-temperature", type=float, help="its temperature (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", help="hidden widths after Taylor pruning")
    p.add_argument(
        "--filters", type=int, nargs=2, help="lenet5: conv1 and conv2 filters after Taylor pruning"
    )
    p.add_argument(
        "--sparsity",
        type=float,
        nargs="+",
        help="per layer fraction pruned by the unstructured rounds",
    )
    p.add_argument("--prune-rounds", type=int)
    p.add_argument(
        "--rewind-epochs",
        type=int,
        help="epochs of retraining after the last pruning round at the float training's "
        "learning rate, cosine to 0 (learning-rate rewinding; 0: none)",
    )
    p.add_argument("--criterion", choices=["magnitude", "taylor"])
    p.add_argument("--clusters", type=int, help="k-means clusters per layer (<= 16)")
    p.add_argument("--kmeans-init", choices=["linear", "density", "random"])
    p.add_argument("--index-bits", type=int)
    p.add_argument("--train-limit", type=int, help="use only the first N training samples")
    p.add_argument("--test-limit", type=int, help="use only the first N test samples")
    p.add_argument(
        "--val-fraction",
        type=float,
        help="fraction of the training set held out (stratified, fixed seed) as the validation "
        "split every choice is made on (default 0.1)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default 1)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    a = p.parse_args(argv)
    if a.onnx and a.model_file:
        print("compress: error: give --model-file or --onnx, not both", file=sys.stderr)
        return 2
    if a.arch and not a.model_file:
        print("compress: error: --arch describes a state_dict --model-file", file=sys.stderr)
        return 2
    cfg = config_for(
        a.dataset,
        "imported" if a.model_file or a.onnx else a.model,
        model_file=a.model_file,
        arch=a.arch,
        data_file=a.data,
        out=a.out,
        data_dir=a.data_dir,
        epochs=a.epochs,
        finetune_epochs=a.finetune_epochs,
        batch=a.batch,
        seed=a.seed,
        l1=a.l1,
        lp=a.lp,
        lp_p=a.lp_p,
        augment=a.augment,
        finetune_augment=a.finetune_augment,
        train_schedule=a.train_schedule,
        finetune_schedule=a.finetune_schedule,
        qat_epochs=a.qat_epochs,
        qat_lr=a.qat_lr,
        distill=a.distill,
        distill_temperature=a.distill_temperature,
        qat_weights=None if a.qat_weights is None else a.qat_weights == "on",
        hidden_targets=tuple(a.hidden) if a.hidden else None,
        conv_targets=tuple(a.filters) if a.filters else None,
        layer_sparsity=tuple(a.sparsity) if a.sparsity else None,
        prune_rounds=a.prune_rounds,
        rewind_epochs=a.rewind_epochs,
        criterion=a.criterion,
        clusters=a.clusters,
        kmeans_init=a.kmeans_init,
        index_bits=a.index_bits,
        train_limit=a.train_limit,
        test_limit=a.test_limit,
        val_fraction=a.val_fraction,
        threads=a.threads,
        plots=not a.no_plots,
        quiet=a.quiet,
    )
    try:
        summary = run(cfg, model=load_onnx(a.onnx) if a.onnx else None)
    except (FileNotFoundError, ValueError, NotImplementedError) as exc:
        print(f"compress: error: {exc}", file=sys.stderr)
        return 2
    print(summary["out"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
