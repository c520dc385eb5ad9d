namespace Keras.MobileNet.Config;

/// <summary>Where the images come from.</summary>
public enum DatasetKind { Imagenette, Folder }

/// <summary>Cosine stepped once per epoch (the notebook's CosineAnnealingLR), or per batch with a linear warm-up.</summary>
public enum ScheduleKind { Epoch, Step }

/// <summary>BatchNorm of the unfrozen blocks in fine-tuning's phase 2: inference mode (Keras' advice) or training mode.</summary>
public enum BatchNormMode { Frozen, Train }
