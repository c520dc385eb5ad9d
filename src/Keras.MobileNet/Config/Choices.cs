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
