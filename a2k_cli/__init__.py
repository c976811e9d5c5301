"""a2k: arbitrary style transfer with All-to-key Attention.

`Stylizer` is imported lazily so that `import a2k_cli` (and `a2k --help`) stays free of torch.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Stylizer":
        from a2k_cli.engine import Stylizer

        return Stylizer
    raise AttributeError(name)
