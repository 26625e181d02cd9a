using System.Buffers.Binary;
using System.Text;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>SentencePiece piece types (ModelProto.SentencePiece.Type).</summary>
internal enum SentencePieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// The parts of SentencePiece's ModelProto (sentencepiece_model.proto) that encoding needs, read straight from
/// the protobuf wire format so no generated code or protobuf runtime is required.
/// </summary>
internal sealed class SentencePieceModelProto
{
    public List<(string Piece, float Score, SentencePieceType Type)> Pieces { get; } = [];

    /// <summary>TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char (proto default unigram).</summary>
    public int ModelType { get; private set; } = 1;

    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public string UnkSurface { get; private set; } = " \u2047 ";
    public string UnkPiece { get; private set; } = "<unk>";
    public string BosPiece { get; private set; } = "<s>";
    public string EosPiece { get; private set; } = "</s>";

    public string NormalizerName { get; private set; } = "";
    public int PrecompiledCharsMapLength { get; private set; }
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <summary>Parses a serialized ModelProto; <paramref name="path"/> only names the file in errors.</summary>
    public static SentencePieceModelProto Parse(byte[] data, string path)
    {
        var model = new SentencePieceModelProto();
        try
        {
            var reader = new Reader(data, 0, data.Length);
            while (reader.More)
            {
                var (field, wire) = reader.Tag();
                switch (field)
                {
                    case 1 when wire == 2: model.ReadPiece(reader.Sub()); break;
                    case 2 when wire == 2: model.ReadTrainerSpec(reader.Sub()); break;
                    case 3 when wire == 2: model.ReadNormalizerSpec(reader.Sub()); break;
                    default: reader.Skip(wire); break;
                }
            }
        }
        catch (FormatException e)
        {
            throw new ModelFormatException($"{path} is not a SentencePiece model ({e.Message}); restore tokenizer.model from the model's repository.", e);
        }
        if (model.Pieces.Count == 0)
            throw new ModelFormatException($"{path} holds no SentencePiece pieces; restore tokenizer.model from the model's repository.");
        return model;
    }

    private void ReadPiece(Reader r)
    {
        string piece = "";
        float score = 0;
        var type = SentencePieceType.Normal;
        while (r.More)
        {
            var (field, wire) = r.Tag();
            switch (field)
            {
                case 1 when wire == 2: piece = r.String(); break;
                case 2 when wire == 5: score = r.Float(); break;
                case 3 when wire == 0: type = (SentencePieceType)(int)r.Varint(); break;
                default: r.Skip(wire); break;
            }
        }
        Pieces.Add((piece, score, type));
    }

    private void ReadTrainerSpec(Reader r)
    {
        while (r.More)
        {
            var (field, wire) = r.Tag();
            switch (field)
            {
                case 3 when wire == 0: ModelType = (int)r.Varint(); break;
                case 24 when wire == 0: TreatWhitespaceAsSuffix = r.Varint() != 0; break;
                case 35 when wire == 0: ByteFallback = r.Varint() != 0; break;
                case 44 when wire == 2: UnkSurface = r.String(); break;
                case 45 when wire == 2: UnkPiece = r.String(); break;
                case 46 when wire == 2: BosPiece = r.String(); break;
                case 47 when wire == 2: EosPiece = r.String(); break;
                default: r.Skip(wire); break;
            }
        }
    }

    private void ReadNormalizerSpec(Reader r)
    {
        while (r.More)
        {
            var (field, wire) = r.Tag();
            switch (field)
            {
                case 1 when wire == 2: NormalizerName = r.String(); break;
                case 2 when wire == 2: PrecompiledCharsMapLength = r.Sub().Length; break;
                case 3 when wire == 0: AddDummyPrefix = r.Varint() != 0; break;
                case 4 when wire == 0: RemoveExtraWhitespaces = r.Varint() != 0; break;
                case 5 when wire == 0: EscapeWhitespaces = r.Varint() != 0; break;
                default: r.Skip(wire); break;
            }
        }
    }

    /// <summary>Minimal protobuf wire reader over a byte range; malformed input throws FormatException.</summary>
    private sealed class Reader
    {
        private readonly byte[] data;
        private readonly int end;
        private int _pos;

        public Reader(byte[] data, int start, int end)
        {
            this.data = data;
            this.end = end;
            _pos = start;
            Length = end - start;
        }

        public bool More => _pos < end;
        public int Length { get; }

        public (int Field, int Wire) Tag()
        {
            ulong tag = Varint();
            if (tag >> 3 == 0 || tag >> 3 > int.MaxValue) throw new FormatException($"bad field tag at byte {_pos}");
            return ((int)(tag >> 3), (int)(tag & 7));
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw new FormatException("truncated varint");
                byte b = data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return result;
            }
            throw new FormatException("varint longer than 10 bytes");
        }

        public Reader Sub()
        {
            ulong length = Varint();
            if (length > (ulong)(end - _pos)) throw new FormatException($"field length {length} runs past the end of the data");
            var sub = new Reader(data, _pos, _pos + (int)length);
            _pos += (int)length;
            return sub;
        }

        public string String()
        {
            var sub = Sub();
            return Encoding.UTF8.GetString(data, sub._pos, sub.Length);
        }

        public float Float()
        {
            if (end - _pos < 4) throw new FormatException("truncated float");
            float f = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(_pos, 4));
            _pos += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Sub(); break;
                case 5: Advance(4); break;
                default: throw new FormatException($"unsupported wire type {wire}");
            }
        }

        private void Advance(int n)
        {
            if (end - _pos < n) throw new FormatException("truncated field");
            _pos += n;
        }
    }
}
