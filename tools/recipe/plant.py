#!/usr/bin/env python3
"""Plants each bug of issue 12's list in turn, builds, runs the tests that should catch it, and restores the file.

Prints one line per bug: CAUGHT (the named tests failed) or MISSED. Run from the repository root:
  python3 tools/recipe/plant.py            # every bug
  python3 tools/recipe/plant.py flip-never # the bugs whose name contains the word
"""
import subprocess, sys, pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
S = "src/Keras.MobileNet/"
BUGS = [
    ("flip-never-drawn", S + "Data/Augmentation.cs", "bool flip = rng.NextDouble() < 0.5;", "bool flip = rng.NextDouble() < 0.0;", "Half_of_the_samples_are_flipped"),
    ("flip-never-applied", S + "Data/ImageOps.cs", "int xo = p.Flip ? size - 1 - x : x;", "int xo = x;", "Transform_equals_torchvision"),
    ("early-stopping-inverted", S + "Engine/Callbacks/EarlyStopping.cs", "if (up ? v > best + minDelta : v < best - minDelta)", "if (up ? v < best - minDelta : v > best + minDelta)", "Early_stopping"),
    ("label-smoothing-not-to-loss", S + "Training/SingleRun.cs", "Losses.CrossEntropy(o.LabelSmoothing)", "Losses.CrossEntropy()", "Label_smoothing_reaches_the_loss"),
    ("label-smoothing-not-from-cli", "src/Train/TrainCommand.cs", "(o, v) => o with { LabelSmoothing = v }", "(o, v) => o", "Every_recipe_option_reaches_the_typed_options"),
    ("flip-applied-to-val", S + "Data/Transforms.cs", "        ImageOps.ToChw(prepared, lut, dest);", "        ImageOps.RotateCropFlip(prepared, new AugmentParams(0, 0, 0, 0, true), cfg.ImageSize, lut, dest);", "Transform_equals_torchvision"),
    ("no-dropout-in-paper", S + "Architecture/Spec.cs", "dropout ?? (preset == Preset.Paper ? 0.2 : 0.0)", "dropout ?? 0.0", "Dropout_is_the_paper"),
    ("dropout-in-notebook", S + "Architecture/Spec.cs", "dropout ?? (preset == Preset.Paper ? 0.2 : 0.0)", "dropout ?? 0.2", "Dropout_is_the_paper"),
    ("dropout-not-in-network", S + "Model/Factories.cs", "nn.Dropout(spec.Dropout)", "nn.Dropout(0.2)", "Dropout_is_the_paper"),
    ("arch-case-sensitive", "src/Train/Words.cs", "values.TryGetValue(text.ToLowerInvariant(), out var v)", "values.TryGetValue(text, out var v)", "Arch_parses_in_any_case"),
    ("best-not-max-val", S + "Runs/TrainerState.cs", "double v = row.ValAccuracy ?? row.TrainAccuracy;", "double v = row.TrainAccuracy;", "The_best_checkpoint"),
    ("best-tie-takes-last", S + "Runs/TrainerState.cs", "bool best = v > BestValAccuracy;", "bool best = v >= BestValAccuracy;", "The_best_checkpoint"),
    ("weight-decay-not-to-optimizer", S + "Training/SingleRun.cs", "Optimizers.AdamW(o.Lr, o.WeightDecay)", "Optimizers.AdamW(o.Lr, 0)", "Weight_decay_and_the_learning_rate"),
    ("min-lr-not-to-schedule", S + "Config/TrainOptions.cs", "public double FloorLr => MinLr ?? Lr / 100;", "public double FloorLr => Lr / 100;", "Min_lr_reaches"),
    ("dropout-option-not-to-model", S + "Training/SingleRun.cs", "MobileNetV2Spec.Build(o.Arch, width, classFolders.Length, o.Dropout)", "MobileNetV2Spec.Build(o.Arch, width, classFolders.Length)", "Dropout_is_the_paper"),
    ("seed-not-to-data-order", S + "Training/TrainingData.cs", "shuffle: true, o.Seed,", "shuffle: true, 0,", "The_seed_sets"),
    ("seed-not-to-init", S + "Training/SingleRun.cs", "manual_seed(o.Seed); // initialisation", "manual_seed(0); // initialisation", "The_seed_sets"),
    ("step-schedule-not-per-batch", S + "Engine/Callbacks/Schedulers.cs", "public override void OnBatchBegin(int batch, Logs logs) => Model.LearningRate = schedule((long)epoch * stepsPerEpoch + batch);", "public override void OnBatchBegin(int batch, Logs logs) { }", "The_step_schedule"),
    ("order-not-a-permutation", S + "Data/Augmentation.cs", "(p[i], p[j]) = (p[j], p[i]);", "p[i] = p[j];", "The_seed_sets"),
    ("loader-ignores-seed", S + "Data/DataLoader.cs", "CounterRng.Permutation(seed, epoch, dataset.Count)", "CounterRng.Permutation(0, epoch, dataset.Count)", "The_seed_sets"),
    ("folder-cycle", S + "Runs/RunReader.cs", "        if (!File.Exists(state) || !File.Exists(summary)) return null;", "        if (!File.Exists(state) || !File.Exists(summary)) return null;\n        GC.KeepAlive(new Training.History());", "No_folder_uses_a_folder"),
]


def run(cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def main():
    words = sys.argv[1:]
    for name, path, old, new, tests in BUGS:
        if words and not any(w in name for w in words):
            continue
        f = ROOT / path
        text = f.read_text()
        if text.count(old) != 1:
            print(f"{name}: the line to change is not in {path} exactly once"); continue
        f.write_text(text.replace(old, new))
        try:
            b = run(["dotnet", "build", "tests/Keras.MobileNet.Tests", "-c", "Release", "-v", "q", "-nologo"])
            if b.returncode != 0:
                print(f"{name}: does not build\n{b.stdout[-800:]}"); continue
            t = run(["dotnet", "test", "tests/Keras.MobileNet.Tests", "--no-build", "-c", "Release", "--filter", f"FullyQualifiedName~{tests}"])
            failed = sorted({l.split()[1] for l in t.stdout.splitlines() if l.startswith("  Failed ")})
            print(f"{name}: {'CAUGHT by ' + ', '.join(failed) if t.returncode != 0 and failed else 'MISSED'}", flush=True)
        finally:
            f.write_text(text)
    run(["dotnet", "build", "tests/Keras.MobileNet.Tests", "-c", "Release", "-v", "q", "-nologo"])


if __name__ == "__main__":
    main()
