"""`hotport bench`: the reference policies (legacy, article, hotport) measured side by side.

Same engine, same simulator, same store; only the cache policy differs. Seven scenarios
(`hotport.bench.scenarios`): latency vs ports, blocking behind a rebuild, throughput
under a capacity-limited network service, the heal's cost vs host size, consistency
under a storm, the engine's own CPU and memory, and a real hypervisor when there is
one. Results in article-equivalent seconds (`hotport.bench.timing`), judged against
the issue's targets (`hotport.bench.targets`), written as JSON, Markdown and PNG plots
(`hotport.bench.report`, `hotport.bench.plots`). BENCHMARKS.md holds the last full run.
"""

from hotport.bench.runner import BenchRun, run_bench, write_outputs
from hotport.bench.settings import SCENARIOS, BenchSettings, available_policies

__all__ = [
    "SCENARIOS",
    "BenchRun",
    "BenchSettings",
    "available_policies",
    "run_bench",
    "write_outputs",
]
