using Keras.MobileNet.Backend;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace Keras.MobileNet.Data;

/// <summary>Generated images: a learnable shapes dataset for end-to-end runs, and photo-like JPEGs for benchmarks.</summary>
public static class Synthetic
{
    /// <summary>Each class is a shape in a colour: circle/red, square/green, triangle/blue, ring/yellow, bar/magenta, ...</summary>
    static readonly (string Name, Rgb24 Colour)[] Kinds =
    [
        ("circle", new(220, 40, 40)), ("square", new(40, 200, 60)), ("triangle", new(50, 80, 230)), ("ring", new(230, 210, 40)),
        ("bar", new(210, 50, 210)), ("cross", new(40, 210, 210)),
    ];

    static bool Inside(int kind, double u, double v)
    {
        double r = Math.Sqrt(u * u + v * v);
        return kind switch
        {
            0 => r < 1,
            1 => Math.Abs(u) < 0.8 && Math.Abs(v) < 0.8,
            2 => v > -0.8 && v < 0.8 && Math.Abs(u) < (v + 0.8) / 1.6,
            3 => r < 1 && r > 0.55,
            4 => Math.Abs(u) < 1 && Math.Abs(v) < 0.3,
            _ => (Math.Abs(u) < 0.25 || Math.Abs(v) < 0.25) && Math.Abs(u) < 1 && Math.Abs(v) < 1,
        };
    }

    public static Image<Rgb24> Shape(int kind, int size, Random rng)
    {
        var img = new Image<Rgb24>(size, size);
        double cx = size * (0.35 + 0.3 * rng.NextDouble()), cy = size * (0.35 + 0.3 * rng.NextDouble());
        double radius = size * (0.2 + 0.1 * rng.NextDouble());
        var c = Kinds[kind].Colour;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int n = rng.Next(-25, 25);
                bool on = Inside(kind, (x - cx) / radius, (y - cy) / radius);
                byte B(int v) => (byte)Math.Clamp(v + n, 0, 255);
                img[x, y] = on ? new Rgb24(B(c.R), B(c.G), B(c.B)) : new Rgb24(B(90), B(90), B(90));
            }
        return img;
    }

    /// <summary>
    /// ROOT/{train,val}/&lt;shape&gt;/*.png: a small dataset a network can learn in a minute on a CPU. ROOT must not
    /// exist or be empty (a dataset is never overwritten); it is written under a temporary name and renamed into place.
    /// </summary>
    public static string ShapesFolder(string root, int classes, int trainPerClass, int valPerClass, int size = 48, int seed = 0)
    {
        if (classes < 2 || classes > Kinds.Length) throw new UserError($"--classes must be 2 to {Kinds.Length}, not {classes}", 2);
        if (trainPerClass < 1 || valPerClass < 1) throw new UserError("--train and --val must be at least 1 image per class", 2);
        if (size < 16) throw new UserError($"--size must be at least 16 pixels, not {size}", 2);
        string full = Path.GetFullPath(root);
        if (File.Exists(full) || (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any()))
            throw new UserError($"{root} already exists and is not empty; synth does not overwrite a dataset (remove it or choose another --out)");
        string temp = $"{full.TrimEnd(Path.DirectorySeparatorChar)}.{Environment.ProcessId}.tmp";
        var rng = new Random(seed);
        try
        {
            foreach (var (split, n) in new[] { ("train", trainPerClass), ("val", valPerClass) })
                for (int k = 0; k < classes; k++)
                {
                    string dir = Path.Combine(temp, split, Kinds[k].Name);
                    Directory.CreateDirectory(dir);
                    for (int i = 0; i < n; i++)
                    {
                        using var img = Shape(k, size, rng);
                        img.SaveAsPng(Path.Combine(dir, $"{i:D4}.png"));
                    }
                }
            if (Directory.Exists(full)) Directory.Delete(full); // empty, checked above
            Directory.Move(temp, full);
        }
        catch
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, true); } catch (IOException) { }
            throw;
        }
        return root;
    }

    /// <summary>
    /// ROOT/split/c&lt;k&gt;/NNNNN.jpg: <paramref name="count"/> photo-like JPEGs spread over <paramref name="classes"/>
    /// folders, generated in parallel (benchmark data). Returns the file paths in index order.
    /// </summary>
    public static string[] PhotoFolder(string root, string split, int count, int classes, int width, int height)
    {
        for (int c = 0; c < classes; c++) Directory.CreateDirectory(Path.Combine(root, split, $"c{c}"));
        var files = Enumerable.Range(0, count).Select(i => Path.Combine(root, split, $"c{i % classes}", $"{i:D5}.jpg")).ToArray();
        Parallel.For(0, count, i => File.WriteAllBytes(files[i], PhotoJpeg(width, height, i)));
        return files;
    }

    /// <summary>A photo-like JPEG (smooth gradients, texture and noise), reproducible from the seed.</summary>
    public static byte[] PhotoJpeg(int width, int height, int seed, int quality = 85)
    {
        var rng = new Random(seed);
        using var img = new Image<Rgb24>(width, height);
        double a = rng.NextDouble() * 6, b = rng.NextDouble() * 6, f = 10 + rng.NextDouble() * 30;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double u = (double)x / width, v = (double)y / height;
                int n = rng.Next(-6, 7);
                img[x, y] = new Rgb24((byte)Math.Clamp(127 + 110 * Math.Sin(a * u + b * v) + n, 0, 255),
                    (byte)Math.Clamp(255 * u * v + 20 * Math.Sin(f * u) + n, 0, 255),
                    (byte)Math.Clamp(128 + 100 * Math.Cos(b * u * 3 + f * v) + n, 0, 255));
            }
        using var ms = new MemoryStream();
        img.SaveAsJpeg(ms, new JpegEncoder { Quality = quality });
        return ms.ToArray();
    }
}
