"""The vectorised batch reader against the reference parser, on many generated formulas.

``parse_formulas`` reads bracket-free formulas with array operations (``_read_simple``);
whatever it reads must equal what ``grammar.parse_general`` (the reference) gives, amount
for amount and in the same order, with the same ``num_atoms``, bit for bit.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

import stoichnet.chem.formula as formula_module
from stoichnet.chem import SYMBOLS, parse_formulas
from stoichnet.chem.grammar import parse_general

# amounts the batch reader takes: up to 15 digits, at most one decimal point between them
amounts = st.one_of(
    st.just(""),
    st.integers(1, 10**15 - 1).map(str),
    st.tuples(st.integers(0, 10**7), st.integers(1, 10**7 - 1)).map(
        lambda parts: f"{parts[0]}.{parts[1]:07d}"
    ),
    st.from_regex(r"[0-9]{1,8}\.[0-9]{1,7}", fullmatch=True).filter(
        lambda text: text.strip("0.") != ""
    ),
)


@st.composite
def simple_formulas(draw):
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=8, unique=True))
    return "".join(symbol + draw(amounts) for symbol in symbols)


@settings(max_examples=200, deadline=None)
@given(st.lists(simple_formulas(), min_size=1, max_size=40))
def test_the_batch_reader_agrees_with_the_reference_parser(texts):
    assert formula_module._read_simple(texts)[0].all()  # the fast path reads every one
    parsed = parse_formulas(texts)
    for row, text in enumerate(texts):
        amounts, num_atoms = parse_general(text)
        composition = parsed.compositions[parsed.inverse[row]]
        assert list(composition.items()) == list(amounts.items()), text
        assert composition.num_atoms == num_atoms, text
