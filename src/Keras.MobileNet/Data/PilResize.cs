using System.Collections.Concurrent;

namespace Keras.MobileNet.Data;

/// <summary>
/// Pillow's resampling for 8-bit images with the BILINEAR filter (what torchvision's Resize does to a PIL image):
/// separable, horizontal pass first, the filter widened by the scale factor when shrinking (antialiasing), weights
/// normalised per output pixel and rounded to 22-bit fixed point. Written from the algorithm's definition; it works
/// on RGB bytes directly, which is also what makes it fast here.
/// </summary>
public static class PilResize
{
    const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Per output index: first input index, tap count, and fixed-point weights (ksize per row).</summary>
    public sealed record Coefficients(int OutSize, int KSize, int[] Start, int[] Count, int[] Weights);

    static Coefficients Window(Coefficients c, int first, int count) => first == 0 && count == c.OutSize ? c
        : new Coefficients(count, c.KSize, c.Start[first..(first + count)], c.Count[first..(first + count)],
            c.Weights[(first * c.KSize)..((first + count) * c.KSize)]);

    static readonly ConcurrentDictionary<(int, int), Coefficients> Cache = new();

    static double Bilinear(double x)
    {
        if (x < 0) x = -x;
        return x < 1 ? 1 - x : 0;
    }

    public static Coefficients For(int inSize, int outSize) => Cache.GetOrAdd((inSize, outSize), static k => Compute(k.Item1, k.Item2));

    static Coefficients Compute(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(1.0, scale);
        double support = 1.0 * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var row = new double[ksize]; // one output index's weights before normalisation
        var fixedW = new int[outSize * ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double ss = 1.0 / filterScale, ww = 0;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Bilinear((x + xmin - center + 0.5) * ss);
                row[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                double p = ww != 0 ? row[x] / ww : row[x];
                // Pillow rounds half away from zero; a bilinear weight is never negative, so that is + 0.5 and truncation.
                fixedW[xx * ksize + x] = (int)(0.5 + p * (1 << PrecisionBits));
            }
            start[xx] = xmin;
            count[xx] = xmax;
        }
        return new Coefficients(outSize, ksize, start, count, fixedW);
    }

    static unsafe void AddScaledRow(byte* row, int* acc, int length, int weight)
    {
        int c = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            int lanes = System.Numerics.Vector<byte>.Count;
            var w = new System.Numerics.Vector<int>(weight);
            for (; c <= length - lanes; c += lanes)
            {
                var bytes = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<byte>>(row + c);
                System.Numerics.Vector.Widen(bytes, out var lo16, out var hi16);
                System.Numerics.Vector.Widen(lo16, out var a0, out var a1);
                System.Numerics.Vector.Widen(hi16, out var a2, out var a3);
                int q = System.Numerics.Vector<int>.Count;
                Store(acc + c, System.Numerics.Vector.AsVectorInt32(a0) * w);
                Store(acc + c + q, System.Numerics.Vector.AsVectorInt32(a1) * w);
                Store(acc + c + 2 * q, System.Numerics.Vector.AsVectorInt32(a2) * w);
                Store(acc + c + 3 * q, System.Numerics.Vector.AsVectorInt32(a3) * w);
            }
        }
        for (; c < length; c++) acc[c] += row[c] * weight;
    }

    static unsafe void Store(int* at, System.Numerics.Vector<int> add) =>
        System.Runtime.CompilerServices.Unsafe.WriteUnaligned(at, System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<int>>(at) + add);

    static byte Clip8(int v) => v >= (1 << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);

    /// <summary>Resizes interleaved RGB bytes (horizontal pass, then vertical, as Pillow does).</summary>
    public static byte[] Resize(byte[] src, int width, int height, int outWidth, int outHeight) =>
        Resize(src, width, height, outWidth, outHeight, 0, 0, outWidth, outHeight);

    /// <summary>
    /// Only the window [x0, x0 + w) x [y0, y0 + h) of the resized image. Every output pixel of Pillow's resample
    /// depends only on its own coefficients, so a window is exactly the same pixels as a crop of the full result.
    /// </summary>
    public static unsafe byte[] Resize(byte[] src, int width, int height, int fullWidth, int fullHeight, int x0, int y0, int outWidth, int outHeight)
    {
        if (src.Length != width * height * 3) throw new ArgumentException("pixel buffer does not match the size");
        if (outWidth < 1 || outHeight < 1) throw new ArgumentException("output size must be positive");
        if (x0 < 0 || y0 < 0 || x0 + outWidth > fullWidth || y0 + outHeight > fullHeight) throw new ArgumentException("window outside the image");
        var h = Window(For(width, fullWidth), x0, outWidth);
        var v = Window(For(height, fullHeight), y0, outHeight);
        // Only the input rows the vertical pass reads need a horizontal pass.
        int firstRow = v.Start[0], lastRow = v.Start[outHeight - 1] + v.Count[outHeight - 1];
        int rows = lastRow - firstRow;
        var mid = width == fullWidth ? null : new byte[rows * outWidth * 3];
        var dst = new byte[outWidth * outHeight * 3];
        const int half = 1 << (PrecisionBits - 1);
        fixed (byte* s = src)
        fixed (int* hw = h.Weights)
        fixed (int* vw = v.Weights)
        {
            byte* m;
            int midStride, midOffset;
            fixed (byte* mp = mid)
            {
                if (mid is null) { m = s + x0 * 3; midStride = width * 3; midOffset = 0; }
                else
                {
                    for (int y = 0; y < rows; y++)
                    {
                        byte* inRow = s + (long)(y + firstRow) * width * 3;
                        byte* outRow = mp + (long)y * outWidth * 3;
                        for (int xx = 0; xx < outWidth; xx++)
                        {
                            int sx0 = h.Start[xx], n = h.Count[xx];
                            int* k = hw + xx * h.KSize;
                            int r = half, g = half, b = half;
                            byte* p = inRow + sx0 * 3;
                            for (int x = 0; x < n; x++, p += 3)
                            {
                                r += p[0] * k[x]; g += p[1] * k[x]; b += p[2] * k[x];
                            }
                            outRow[xx * 3] = Clip8(r); outRow[xx * 3 + 1] = Clip8(g); outRow[xx * 3 + 2] = Clip8(b);
                        }
                    }
                    m = mp; midStride = outWidth * 3; midOffset = firstRow;
                }
                fixed (byte* d = dst)
                {
                    int rowBytes = outWidth * 3;
                    var acc = new int[rowBytes];
                    fixed (int* a = acc)
                        for (int yy = 0; yy < outHeight; yy++)
                        {
                            // Row by row: acc += row * weight for each tap, sequential memory, vectorised.
                            int sy0 = v.Start[yy] - midOffset, n = v.Count[yy];
                            int* k = vw + yy * v.KSize;
                            new Span<int>(a, rowBytes).Fill(half);
                            for (int t = 0; t < n; t++)
                                AddScaledRow(m + (long)(sy0 + t) * midStride, a, rowBytes, k[t]);
                            byte* outRow = d + (long)yy * rowBytes;
                            for (int c = 0; c < rowBytes; c++) outRow[c] = Clip8(a[c]);
                        }
                }
            }
        }
        return dst;
    }
}
