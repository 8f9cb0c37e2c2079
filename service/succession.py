"""Policy versions that replace one another on a date (`supersedes:` in a policy file).

A payer publishes a revised policy with the date it takes effect. Both versions are deployed ahead of
that date, each a policy file of its own, the new one saying `supersedes: <the old one's id>`; a payer
names any member of such a chain, and each call is judged by the member in force on the call's date
(the latest `effective` on or before it). So the switch happens on that date on every replica, with
no redeploy and no clock-dependent edit.

What a chain may be is checked once with the policy files (`check_supersedes`): a `supersedes` names
a policy, no two policies supersede the same one, there is no cycle, and each member takes effect
after the one it replaces. Then every chain is a line ordered by date, compiled once into a
`Succession`, and choosing the member for a call is a lookup by date. A payer whose chain has no
member in force on the day the policies are checked is refused where it names it (payers.yaml):
once a member is in force one stays in force, so a catalog that passed this check on one day (and
was cached) passes it on every later day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from service.yamlsource import Located, SourceError

if TYPE_CHECKING:
    from service.policy import Policy


class SuccessionError(SourceError):
    """Policies' `supersedes` do not make lines of versions ordered by date; names file and line."""


@dataclass(frozen=True)
class Succession:
    """One chain of policy versions, oldest first: (the date each takes effect, its policy id)."""

    members: tuple[tuple[date, str], ...]

    def in_force(self, day: date) -> str:
        """The id of the member in force on `day`: the latest taking effect on or before it. Before
        every member's date, the first (start-up refuses a payer whose chain has nothing in force, so
        only a call dated before the service's start, as a test's may be, finds none)."""
        chosen = self.members[0][1]
        for effective, policy_id in self.members[1:]:
            if effective > day:
                break
            chosen = policy_id
        return chosen

    def standing(self, policy_id: str, day: date) -> str | None:
        """Where the member `policy_id` stands on `day`, in words (the policy page, `policies check`);
        None in a chain of one."""
        if len(self.members) == 1:
            return None
        ids = [member for _, member in self.members]
        place = ids.index(policy_id)
        effective, current = self.members[place][0], self.in_force(day)
        following = self.members[place + 1] if place + 1 < len(ids) else None
        if effective > day:
            until = f"; until then '{current}' judges orders" if current != policy_id else ""
            return f"not yet in force: takes effect on {effective.isoformat()}{until}"
        if following is not None and following[0] <= day:
            return f"superseded: '{following[1]}' replaced it on {following[0].isoformat()}"
        if following is not None:
            return f"in force; '{following[1]}' replaces it on {following[0].isoformat()}"
        return f"in force since {effective.isoformat()}, superseding '{ids[place - 1]}'"


@dataclass(frozen=True)
class Successions:
    """Every policy's chain, by policy id (a policy nothing supersedes and that supersedes nothing
    is a chain of one)."""

    chains: Mapping[str, Succession]

    def __getitem__(self, policy_id: str) -> Succession:
        return self.chains[policy_id]

    def problem(self, policy_id: str, day: date) -> str | None:
        """Why a payer may not name `policy_id` when checked on `day`, or None."""
        if policy_id not in self.chains:
            return f"no policy with id '{policy_id}'"
        chain = self.chains[policy_id]
        first_day, first = chain.members[0]
        if first_day > day:
            return (
                f"no policy of the chain of '{policy_id}' is in force on {day.isoformat()}: the first, "
                f"'{first}', takes effect on {first_day.isoformat()}; keep the version in force beside it "
                "(the new one `supersedes` it)"
            )
        return None

    @classmethod
    def of(cls, policies: Mapping[str, Policy]) -> Successions:
        """The chains of policies whose `supersedes` passed `check_supersedes`."""
        successor = {p.supersedes: p.id for p in policies.values() if p.supersedes is not None}
        chains: dict[str, Succession] = {}
        for policy in policies.values():
            if policy.supersedes is not None:
                continue  # reached from the chain's first member
            line, current = [], policy.id
            while True:
                line.append((policies[current].currency.effective, current))
                if current not in successor:
                    break
                current = successor[current]
            chain = Succession(tuple(line))
            chains.update((member, chain) for _, member in line)
        return cls(chains)


def check_supersedes(policies: Mapping[str, Policy], files: Mapping[str, Located]) -> None:
    """Refuse, at the line of the policy file that says it, a `supersedes` that names no policy, a
    policy superseded twice, a cycle, or a version that does not take effect after the one it
    replaces (`files`: each policy's parsed file, by policy id)."""

    def at(policy_id: str, key: str) -> str:
        return f"{files[policy_id].at((key,))}: {key}"

    replaced_by: dict[str, str] = {}
    for policy in policies.values():
        old = policy.supersedes
        if old is None:
            continue
        if old not in policies:
            raise SuccessionError(f"{at(policy.id, 'supersedes')}: no policy with id '{old}'")
        if old in replaced_by:
            first = files[replaced_by[old]].at(("supersedes",))
            raise SuccessionError(
                f"{at(policy.id, 'supersedes')}: '{old}' is already superseded by '{replaced_by[old]}' "
                f"({first}); one version is replaced by one other"
            )
        replaced_by[old] = policy.id
    for policy_id in replaced_by.values():
        seen = [policy_id]
        while (older := policies[seen[-1]].supersedes) is not None:
            if older in seen:
                cycle = " → ".join([*seen[seen.index(older) :], older])
                raise SuccessionError(
                    f"{at(policy_id, 'supersedes')}: the versions supersede one another: {cycle}"
                )
            seen.append(older)
    for old, new in replaced_by.items():
        before, after = policies[old].currency.effective, policies[new].currency.effective
        if after <= before:
            raise SuccessionError(
                f"{at(new, 'effective')}: {after.isoformat()} is not after {before.isoformat()}, when "
                f"'{old}', which it supersedes, took effect"
            )
