namespace Keras.MobileNet.Config;

/// <summary>Where the images come from.</summary>
public enum DatasetKind { Imagenette, Folder }

/// <summary>Cosine stepped once per epoch (the notebook's CosineAnnealingLR), or per batch with a linear warm-up.</summary>
public enum ScheduleKind { Epoch, Step }

/// <summary>BatchNorm of the unfrozen blocks in fine-tuning's phase 2: inference mode (Keras' advice) or training mode.</summary>
public enum BatchNormMode { Frozen, Train }

/// <summary>
/// What an in-memory dataset keeps of each train image: auto = resized when that fits in half the memory available,
/// else decoded; resized = the image at each of the three RandomResize sizes (no resize per sample: several times the
/// speed, about 2.3x the memory at 224 px); decoded = the decoded image, resized per sample (the least memory).
/// </summary>
public enum TrainCache { Auto, Resized, Decoded }

/// <summary>
/// Where the train transform's per-sample work (rotate, crop, flip, normalise) runs: host = each sample on the host's
/// workers (today's path); device = the whole batch as one integer gather over the pre-resized cache on
/// <see cref="CacheDevice"/>; auto = device when training on a GPU and the cache fits there, else host. The same batches.
/// </summary>
public enum AugmentOn { Auto, Host, Device }

/// <summary>Where the batched gather's cache lives: auto = the training device when it is a GPU and the cache fits in half its free memory, else the host.</summary>
public enum CacheDevice { Auto, Cpu, Cuda }

/// <summary>
/// What a run measures at its end for the width comparison: its CPU latency at batch 1 in ONNX Runtime in float32
/// (fp32, the default), float32 and int8 (int8: the network quantized as <c>export --int8</c> does, calibrated on the
/// run's val images), or nothing (none).
/// </summary>
public enum LatencyMeasure { Fp32, Int8, None }
