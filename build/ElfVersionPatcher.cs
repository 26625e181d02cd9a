// Shared by the MSBuild inline task (build/TorchSharpNativeFix.targets) and by the tests.
// TorchSharp-cpu 0.107.0's libLibTorchSharp.so lists GLIBCXX_3.4.32 as a required symbol version, for
// one symbol it never calls (std::ios_base_library_init). Debian 12 / Ubuntu 22.04 ship an older
// libstdc++, so the dynamic loader refuses the library. Marking that one requirement VER_FLG_WEAK makes
// the loader accept its absence (glibc only warns about missing weak versions).
using System;
using System.IO;
using System.Text;

namespace LoraMixer.Build
{
    /// <summary>Marks selected symbol-version requirements of an ELF64 shared library as weak.</summary>
    public static class ElfVersionPatcher
    {
        /// <summary>The version the system libstdc++ of Debian 12 lacks.</summary>
        public const string MissingVersion = "GLIBCXX_3.4.32";

        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>Result of patching one file.</summary>
        public enum Outcome { Patched, AlreadyWeak, NoSuchRequirement }

        /// <summary>
        /// Sets VER_FLG_WEAK on every vernaux entry named <paramref name="version"/> in the file's
        /// .gnu.version_r section. Idempotent; writes only the changed two-byte flag fields.
        /// </summary>
        public static Outcome MakeVersionWeak(string path, string version = MissingVersion)
        {
            byte[] elf = File.ReadAllBytes(path);
            var offsets = FindFlagOffsets(elf, version, path);
            if (offsets.Length == 0) return Outcome.NoSuchRequirement;
            bool changed = false;
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None))
            {
                foreach (long offset in offsets)
                {
                    ushort flags = BitConverter.ToUInt16(elf, (int)offset);
                    if ((flags & VerFlgWeak) != 0) continue;
                    ushort patched = (ushort)(flags | VerFlgWeak);
                    stream.Position = offset;
                    stream.Write(BitConverter.GetBytes(patched), 0, 2);
                    changed = true;
                }
            }
            return changed ? Outcome.Patched : Outcome.AlreadyWeak;
        }

        /// <summary>File offsets of the vna_flags fields of the vernaux entries named <paramref name="version"/>.</summary>
        public static long[] FindFlagOffsets(byte[] elf, string version, string nameForErrors)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException($"{nameForErrors}: not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"{nameForErrors}: only little-endian ELF64 is supported");
            long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3A);
            int shnum = BitConverter.ToUInt16(elf, 0x3C);
            var result = new System.Collections.Generic.List<long>();
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                Check(elf, sh, 64, nameForErrors);
                if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
                long secOffset = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
                int link = (int)BitConverter.ToUInt32(elf, (int)sh + 0x28);
                int count = (int)BitConverter.ToUInt32(elf, (int)sh + 0x2C);
                long strSh = shoff + (long)link * shentsize;
                Check(elf, strSh, 64, nameForErrors);
                long strOffset = (long)BitConverter.ToUInt64(elf, (int)strSh + 0x18);

                long vn = secOffset;
                for (int n = 0; n < count; n++)
                {
                    Check(elf, vn, 16, nameForErrors);
                    int auxCount = BitConverter.ToUInt16(elf, (int)vn + 2);
                    long aux = vn + BitConverter.ToUInt32(elf, (int)vn + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        Check(elf, aux, 16, nameForErrors);
                        long nameAt = strOffset + BitConverter.ToUInt32(elf, (int)aux + 8);
                        if (ReadCString(elf, nameAt, nameForErrors) == version) result.Add(aux + 4);
                        aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                    }
                    uint next = BitConverter.ToUInt32(elf, (int)vn + 12);
                    if (next == 0) break;
                    vn += next;
                }
            }
            return result.ToArray();
        }

        /// <summary>True when a libstdc++ on this machine already provides <paramref name="version"/>.</summary>
        public static bool SystemLibStdCxxHas(string version = MissingVersion)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            };
            foreach (string candidate in candidates)
            {
                if (!File.Exists(candidate)) continue;
                byte[] bytes = File.ReadAllBytes(candidate);
                byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
                return IndexOf(bytes, needle) >= 0;
            }
            return false;
        }

        private static int IndexOf(byte[] haystack, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= haystack.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }

        private static string ReadCString(byte[] elf, long at, string nameForErrors)
        {
            Check(elf, at, 1, nameForErrors);
            int end = Array.IndexOf(elf, (byte)0, (int)at);
            if (end < 0) throw new InvalidDataException($"{nameForErrors}: unterminated string in .dynstr");
            return Encoding.ASCII.GetString(elf, (int)at, end - (int)at);
        }

        private static void Check(byte[] elf, long at, int length, string nameForErrors)
        {
            if (at < 0 || at + length > elf.Length)
                throw new InvalidDataException($"{nameForErrors}: ELF structure points outside the file");
        }
    }
}

#if !LORAMIXER_NO_MSBUILD
namespace LoraMixer.Build
{
    /// <summary>MSBuild task: patches every libLibTorchSharp.so under <see cref="Directory"/>.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>Output folder to scan (recursively).</summary>
        [Microsoft.Build.Framework.Required]
        public string Directory { get; set; } = "";

        /// <inheritdoc />
        public override bool Execute()
        {
            if (!System.IO.Directory.Exists(Directory)) return true;
            var files = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
            if (files.Length == 0) return true;
            if (ElfVersionPatcher.SystemLibStdCxxHas())
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "libstdc++ provides " + ElfVersionPatcher.MissingVersion + "; libLibTorchSharp.so left as is.");
                return true;
            }
            foreach (string file in files)
            {
                try
                {
                    var outcome = ElfVersionPatcher.MakeVersionWeak(file);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, file + ": " + outcome);
                }
                catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
                {
                    Log.LogWarning("Could not patch " + file + ": " + e.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
}
#endif
