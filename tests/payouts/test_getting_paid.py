"""From a sale to a creator's bank: the sale credited net of the fee, held, then paid out once."""

from __future__ import annotations

from app.checkout.devprocessor import dev_fee
from tests.payouts.conftest import Payouts


def test_a_sale_is_credited_held_and_paid_out_once(payouts: Payouts):
    payouts.connect()
    for _ in range(3):
        payouts.sell()
    net = 499 - dev_fee(499)
    assert payouts.entries() == [("sale", net)] * 3
    assert payouts.balance() == (3 * net, 0)  # on hold

    payouts.run_scheduler()
    assert payouts.payouts() == []  # nothing available yet

    payouts.advance(8)
    payouts.run_scheduler()
    assert payouts.payouts() == [("paid", 3 * net)]
    assert payouts.entries()[-1] == ("payout", -3 * net)
    assert payouts.balance() == (0, 0)

    payouts.run_scheduler()  # the same period: nothing more
    assert payouts.payouts() == [("paid", 3 * net)]

    page = payouts.client.get("/creator/payouts")
    assert page.status_code == 200
    assert "paid" in page.text
