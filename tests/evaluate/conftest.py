import pytest


@pytest.fixture
def on_batch(monkeypatch):
    """``on_batch(step, action)`` calls ``action(model)`` after the ``step``-th training
    batch of any network from then on; returns the running count of batches trained (a
    one-item list the test may reset)."""
    from stoichnet.nn import Sequential

    def install(step: int, action) -> list[int]:
        train_step, count = Sequential._train_step, [0]

        def counted(self, *args, **kwargs):
            out = train_step(self, *args, **kwargs)
            count[0] += 1
            if count[0] == step:
                action(self)
            return out

        monkeypatch.setattr(Sequential, "_train_step", counted)
        return count

    return install
