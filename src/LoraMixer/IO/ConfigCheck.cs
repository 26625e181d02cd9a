using System.Globalization;
using LoraMixer.Errors;

namespace LoraMixer.IO;

/// <summary>Range checks of config values, failing with one line naming the file, the field, the value and what is allowed.</summary>
internal sealed class ConfigCheck(string file)
{
    /// <summary>The config file named in errors.</summary>
    public string File => file;

    /// <summary>A value the config must set.</summary>
    public T Required<T>(string field, T? value) where T : struct =>
        value ?? throw new ModelFormatException($"{file}: required field '{field}' is missing; add it");

    /// <summary>A required integer above zero.</summary>
    public int Positive(string field, int? value) => Positive(field, Required(field, value));

    /// <summary>An integer above zero.</summary>
    public int Positive(string field, int value) =>
        value > 0 ? value : throw new ModelFormatException($"{file}: {field} is {value}; it must be a positive integer");

    /// <summary>A finite number above zero.</summary>
    public double Positive(string field, double value) =>
        value > 0 && double.IsFinite(value) ? value
            : throw new ModelFormatException($"{file}: {field} is {value.ToString(CultureInfo.InvariantCulture)}; it must be a positive number");
}
