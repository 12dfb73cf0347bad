"""Stand-ins for the systems Zhida cannot reach in development and tests: the treasury and the SMS carriers.

Each speaks the documented protocol of the system it plays, with injectable faults. Only the stand-in commands
(`zhida treasury-sim`, the embedded stack, the benchmarks) and the tests import this package; production code
talks to the real systems through gateways/.
"""
