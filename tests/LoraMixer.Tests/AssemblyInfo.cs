// TorchSharp 0.107 passes the handle of a temporary Scalar (e.g. the implicit alpha of Tensor + Tensor) to native
// code without keeping the Scalar alive; when another thread triggers a GC during that call, the finalizer can free
// it mid-operation ("Expected false to be true ... toFloat"). Tests therefore run one at a time: a single test
// thread cannot collect while it is inside native code, which is also how the CLI runs.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
