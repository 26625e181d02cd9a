using System.Net;
using System.Net.Sockets;
using LoraMixer.Evaluation;

namespace LoraMixer.Tests.Evaluation;

public sealed class CodeExecutorTests
{
    private static readonly CodeExecutor Executor = new(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, Timeout = TimeSpan.FromSeconds(5) });

    private static readonly HumanEvalProblem Add = new("t/add", "def add(a, b):\n    \"\"\"Sum.\"\"\"\n", "    return a + b\n",
        "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n", "add");

    [Fact]
    public void Executing_without_permission_is_refused_with_the_flag_named()
    {
        var error = Assert.Throws<CodeExecutionNotAllowedException>(() => new CodeExecutor(new CodeExecutionOptions()));
        Assert.Contains("--allow-code-execution", error.Message);
    }

    [Fact]
    public void A_correct_completion_passes_and_a_wrong_one_fails()
    {
        Assert.Equal(ExecutionOutcome.Passed, Executor.RunHumanEval(Add, "    return a + b\n").Outcome);
        var wrong = Executor.RunHumanEval(Add, "    return a - b\n");
        Assert.Equal(ExecutionOutcome.Failed, wrong.Outcome);
        Assert.Contains("AssertionError", wrong.Output);
    }

    [Fact]
    public void Exiting_early_with_status_zero_does_not_pass()
    {
        Assert.False(Executor.RunHumanEval(Add, "    return a - b\nimport sys\nsys.exit(0)\n").Passed);
        Assert.False(Executor.RunHumanEval(Add, "    return a - b\nimport os\nos._exit(0)\n").Passed);
    }

    [Fact]
    public void A_memory_bomb_hits_the_limit_and_fails()
    {
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, MemoryLimitBytes = 256L << 20 });
        var result = executor.Run("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))\n");
        Assert.Equal(ExecutionOutcome.MemoryLimit, result.Outcome);
        Assert.False(result.Passed);
    }

    [Fact]
    public void Opening_a_socket_fails_even_to_a_listening_local_port()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var result = Executor.Run($"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n");
        Assert.Equal(ExecutionOutcome.Failed, result.Outcome);
        Assert.Contains("network access is disabled", result.Output);
        var raw = Executor.Run($"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.connect(('127.0.0.1', {port}))\n");
        Assert.Equal(ExecutionOutcome.Failed, raw.Outcome);
        Assert.False(listener.Pending());
    }

    [Fact]
    public void Output_is_truncated_and_the_working_folder_is_removed()
    {
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, MaxOutputChars = 100 });
        var result = executor.Run("print(__file__)\nprint('x' * 100000)\n");
        Assert.True(result.Passed);
        Assert.True(result.Output.Length < 200);
        Assert.Contains("truncated", result.Output);
        string cwd = Path.GetDirectoryName(result.Output.Split('\n')[0].Trim())!;
        Assert.Contains("loramixer-exec-", cwd);
        Assert.False(Directory.Exists(cwd));
    }

    [Fact]
    public void A_missing_interpreter_is_reported_not_thrown()
    {
        var executor = new CodeExecutor(new CodeExecutionOptions { AllowCodeExecution = true, PythonExecutable = "/nonexistent/python3" });
        var result = executor.Run("print(1)\n");
        Assert.Equal(ExecutionOutcome.StartFailed, result.Outcome);
        Assert.Contains("/nonexistent/python3", result.Output);
    }

    [SkippableFact]
    public void HumanEval_canonical_solutions_all_pass_and_empty_bodies_all_fail()
    {
        string path = TestPaths.RequireShared("data", "humaneval", "HumanEval.jsonl.gz");
        var problems = HumanEvalLoader.Load(path).Examples;
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, MaxParallelism = 2 });
        var canonical = executor.RunMany(problems.Select(p => CodeExecutor.HumanEvalProgram(p, p.CanonicalSolution)).ToArray());
        var failures = problems.Zip(canonical).Where(x => !x.Second.Passed).Select(x => $"{x.First.TaskId}: {x.Second.Outcome} {x.Second.Output}").ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(164, canonical.Count(r => r.Passed));
        var empty = executor.RunMany(problems.Select(p => CodeExecutor.HumanEvalProgram(p, "    pass\n")).ToArray());
        Assert.Equal(0, empty.Count(r => r.Passed));
    }
}
