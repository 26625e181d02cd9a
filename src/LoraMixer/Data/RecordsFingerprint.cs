using System.Security.Cryptography;
using System.Text;

namespace LoraMixer.Data;

/// <summary>
/// A short SHA-256 of training records' content (task, prompt, response, text, in order): a resumed run
/// compares it with the first run's, so other data of the same size is refused rather than trained on.
/// </summary>
public static class RecordsFingerprint
{
    /// <summary>The first 16 hex digits of the SHA-256 over every record.</summary>
    public static string Of(IEnumerable<TrainingRecord> records)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var r in records)
            foreach (string? field in new[] { r.Task, r.Prompt, r.Response, r.Text })
            {
                // A length prefix keeps ("ab", "c") and ("a", "bc") apart; -1 marks an absent field.
                sha.AppendData(BitConverter.GetBytes(field?.Length ?? -1));
                if (field is not null) sha.AppendData(Encoding.UTF8.GetBytes(field));
            }
        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }
}
