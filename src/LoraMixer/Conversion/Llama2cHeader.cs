using System.Buffers.Binary;
using LoraMixer.Errors;

namespace LoraMixer.Conversion;

/// <summary>
/// The seven int32 fields that open a legacy (version 0) llama2.c checkpoint, validated, with the
/// layout of the float32 weights that follow.
/// </summary>
internal sealed record Llama2cHeader(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    /// <summary>Bytes of the header itself.</summary>
    public const int Bytes = 7 * sizeof(int);

    // llama2.c's export.py writes this magic ("ak42") first in its version 1 and 2 formats.
    private const uint VersionedMagic = 0x616b3432;

    /// <summary>Width of one attention head.</summary>
    public int HeadSize => Dim / Heads;

    /// <summary>Rows of the key and value projections.</summary>
    public int KvDim => HeadSize * KvHeads;

    /// <summary>Parses and validates the header bytes of <paramref name="path"/>.</summary>
    public static Llama2cHeader Parse(string path, ReadOnlySpan<byte> header)
    {
        ModelFormatException Fail(string problem) => new(
            $"Invalid llama2.c checkpoint {path}: {problem}. Export the model again with llama2.c's export.py --version 0 (the legacy format).");

        if (header.Length < Bytes)
            throw Fail($"it is {header.Length} bytes long, shorter than the {Bytes}-byte header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) == VersionedMagic)
            throw Fail("it is a version 1 or 2 export (it starts with the magic \"ak42\"); only the legacy version 0 format is supported");

        Span<int> f = stackalloc int[7];
        for (int i = 0; i < f.Length; i++) f[i] = BinaryPrimitives.ReadInt32LittleEndian(header[(4 * i)..]);
        int dim = f[0], hidden = f[1], layers = f[2], heads = f[3], kvHeads = f[4], vocab = f[5], seqLen = f[6];
        string fields = $"dim={dim}, hidden_dim={hidden}, n_layers={layers}, n_heads={heads}, n_kv_heads={kvHeads}, vocab_size={vocab}, seq_len={seqLen}";

        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || seqLen <= 0 || vocab == 0 || vocab == int.MinValue)
            throw Fail($"its header ({fields}) has a dimension that is not positive");
        if (dim % heads != 0)
            throw Fail($"its header ({fields}) has n_heads not dividing dim");
        if (kvHeads > heads || heads % kvHeads != 0)
            throw Fail($"its header ({fields}) has n_kv_heads not dividing n_heads");
        if (dim / heads % 2 != 0)
            throw Fail($"its header ({fields}) has an odd head size dim/n_heads, which rotary embeddings cannot use");

        return new Llama2cHeader(dim, hidden, layers, heads, kvHeads, Math.Abs(vocab), seqLen, SharedClassifier: vocab > 0);
    }

    /// <summary>
    /// Float offsets (from the end of the header) of each weight block, in file order, and the total
    /// float count; null when the sizes overflow, which only a corrupt header can cause.
    /// </summary>
    public Llama2cLayout? Layout()
    {
        try
        {
            checked
            {
                long dim = Dim, hidden = HiddenDim, layers = Layers, kv = KvDim, vocab = VocabSize;
                long offset = 0;
                long Take(long count)
                {
                    long at = offset;
                    offset = checked(offset + count);
                    return at;
                }
                var layout = new Llama2cLayout(
                    TokenEmbedding: Take(vocab * dim),
                    RmsAttention: Take(layers * dim),
                    Wq: Take(layers * dim * dim),
                    Wk: Take(layers * kv * dim),
                    Wv: Take(layers * kv * dim),
                    Wo: Take(layers * dim * dim),
                    RmsFfn: Take(layers * dim),
                    W1: Take(layers * hidden * dim),
                    W2: Take(layers * dim * hidden),
                    W3: Take(layers * hidden * dim),
                    RmsFinal: Take(dim),
                    // freq_cis_real and freq_cis_imag: precomputed RoPE tables, recomputed by the runtime.
                    FreqCis: Take(2 * (long)SeqLen * (HeadSize / 2)),
                    Classifier: SharedClassifier ? -1 : Take(vocab * dim),
                    TotalFloats: 0);
                long totalBytes = checked(Bytes + offset * sizeof(float));
                return layout with { TotalFloats = offset, TotalBytes = totalBytes };
            }
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
