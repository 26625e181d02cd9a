using System.Buffers.Binary;
using System.Text;

namespace LoraMixer.Tests.IO;

/// <summary>Builds safetensors files byte by byte, so tests control every field a writer would get right.</summary>
internal static class RawSafeTensors
{
    public static byte[] Build(string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLengthOverride ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static string WriteFile(string dir, string headerJson, byte[] data, string name = "t.safetensors")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, Build(headerJson, data));
        return path;
    }

    public static byte[] Halves(params ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), values[i]);
        return bytes;
    }

    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }
}
