"""PromotionService on real repositories: the plan's diff, refusals, still_current after pushes,
and commits (trailers, author, races with other pushes, concurrent promotions)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.errors import UserError
from services.git import GitConflict
from services.promotion.service import PromotionService
from services.promotion.snapshot import read_files
from tests.git_support import sh
from tests.promotion_support import TAGS, World, kustomization, make_world, path_of

STAGING = path_of("api", "staging")
EXPECTED_DIFF = f"""\
diff --git a/{STAGING} b/{STAGING}
--- a/{STAGING}
+++ b/{STAGING}
@@ -5,7 +5,7 @@
   - ../../../base/api   # shared manifests
 images:
   - name: ghcr.io/acme/api
-    newTag: "1.4.2"  # bumped by promotion
+    newTag: "1.4.3"  # bumped by promotion
 replicas:
   - name: api
     count: 2
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.db.close()


def remote_diff(world: World, rev: str = "main") -> str:
    """The diff `rev` introduced as a plan shows it: without git's `index` line (blob ids) and the
    "function" context git appends to hunk headers."""
    out = sh(world.remote.bare, "diff", f"{rev}~1", rev)
    kept = "".join(line for line in out.splitlines(keepends=True) if not line.startswith("index "))
    return re.sub(r"(?m)^(@@ [^@]+ @@).*$", r"\1", kept)


# -- plan -----------------------------------------------------------------------------------------


def test_plan_shows_exactly_the_version_line(world: World) -> None:
    plan = world.service.plan("api", "staging")
    assert (plan.app, plan.from_env, plan.to_env) == ("api", "dev", "staging")
    assert (plan.repository, plan.target_file, plan.base_sha) == ("deploy", STAGING, world.remote.head())
    assert plan.diff == EXPECTED_DIFF
    assert not plan.empty
    assert "1.4.2 → 1.4.3" in plan.summary
    assert len(plan.diff_hash) == 64
    assert (plan.source_ref.name, plan.target_ref.name, plan.target_ref.namespace) == ("api", "api", "apps")
    assert plan.id != world.service.plan("api", "staging").id  # each plan is its own request


def test_plan_from_an_explicit_environment(world: World) -> None:
    plan = world.service.plan("api", "prod", from_env="dev")
    assert plan.from_env == "dev"
    assert '-    newTag: "1.4.1"' in plan.diff
    assert '+    newTag: "1.4.3"' in plan.diff


def test_nothing_to_promote_is_empty(world: World) -> None:
    world.remote.commit({STAGING: kustomization("api", "staging", TAGS["dev"])}, "staging catches up")
    plan = world.service.plan("api", "staging")
    assert plan.empty
    assert plan.diff == ""
    assert "nothing to promote" in plan.summary
    with pytest.raises(UserError, match="Nothing to promote"):
        world.request(plan)


@pytest.mark.parametrize(
    ("app", "to_env", "from_env", "message", "hint"),
    [
        ("api", "stagng", None, "Unknown environment `stagng`", "Did you mean `staging`?"),
        ("api", "prod", "qa", "Unknown environment `qa`", "Known environments: `dev`, `prod`, `staging`"),
        ("api", "--upload-pack=touch x", None, "Unknown environment", None),
        ("api", "dev", None, "`dev` is the first environment", "dev → staging → prod"),
        ("api", "prod", "prod", "to itself", None),
        ("apu", "prod", None, "No app called `apu`", "Did you mean `api`?"),
        ("legacy", "prod", None, "no Git `repository` and `path`", "Add `repository:` and `path:`"),
    ],
)
def test_plan_refusals(
    world: World, app: str, to_env: str, from_env: str | None, message: str, hint: str | None
) -> None:
    with pytest.raises(UserError) as caught:
        world.service.plan(app, to_env, from_env)
    assert message in caught.value.message
    if hint is not None:
        assert caught.value.hint is not None
        assert hint in caught.value.hint


def test_missing_promotion_file(world: World) -> None:
    world.remote.commit({path_of("web", "prod"): None}, "drop web prod")
    with pytest.raises(UserError, match="does not exist on `main`"):
        world.service.plan("web", "prod")


# -- still_current ----------------------------------------------------------------------------------


def test_still_current_after_an_unrelated_push(world: World) -> None:
    promotion = world.approved(world.service.plan("api", "prod"))
    world.remote.commit({"README.md": "changed\n"}, "docs")
    world.remote.commit({path_of("web", "prod"): kustomization("web", "prod", "9.9.9")}, "web hotfix")
    assert world.service.still_current(promotion) is None


def test_still_current_after_a_push_to_the_target_file(world: World) -> None:
    plan = world.service.plan("api", "prod")
    promotion = world.approved(plan)
    moved = kustomization("api", "prod", TAGS["prod"]).replace("count: 2", "count: 3")
    head = world.remote.commit({path_of("api", "prod"): moved}, "scale api")
    fresh = world.service.still_current(promotion)
    assert fresh is not None
    assert (fresh.base_sha, fresh.empty) == (head, False)
    assert fresh.diff_hash != plan.diff_hash
    assert fresh.id != plan.id
    assert "+    count: 3" not in fresh.diff
    assert "     count: 3" in fresh.diff


def test_still_current_when_the_source_moved(world: World) -> None:
    promotion = world.approved(world.service.plan("api", "prod"))
    world.remote.commit({path_of("api", "staging"): kustomization("api", "staging", "1.5.0")}, "staging 1.5")
    fresh = world.service.still_current(promotion)
    assert fresh is not None
    assert '+    newTag: "1.5.0"' in fresh.diff


# -- commit -----------------------------------------------------------------------------------------


def test_commit_pushes_the_approved_diff_with_trailers(world: World) -> None:
    plan = world.service.plan("api", "staging")
    promotion = world.approved(plan)
    before = world.remote.head()
    sha = world.service.commit(
        promotion,
        approvers=["U0BOSS", "U0CAROL", "U0BOSS"],
        author_name="Dana",
        author_email="dana@example.com",
    )
    assert sha == world.remote.head()
    assert world.remote.field("%P") == before
    assert remote_diff(world) == plan.diff == EXPECTED_DIFF
    assert world.remote.field("%an <%ae>") == "Dana <dana@example.com>"
    assert world.remote.field("%cn <%ce>") == "gitops-bot <gitops-bot@localhost>"
    assert world.remote.field("%B") == (
        f"promote api to staging: {plan.summary}\n\n"
        "Requested-by: Dana <U0DANA>\nApproved-by: U0BOSS\nApproved-by: U0CAROL\n"
        f"Audit-Id: {promotion.id}"
    )
    trailer = sh(world.remote.bare, "log", "-1", "--format=%(trailers:key=Approved-by,valueonly)")
    assert trailer.split() == ["U0BOSS", "U0CAROL"]


def test_commit_without_approval_policy_and_without_author(world: World) -> None:
    promotion = world.request(world.service.plan("api", "staging"), approvals_required=0)
    assert promotion.became_approved
    world.service.commit(promotion, approvers=[], author_name=None, author_email=None)
    assert world.remote.field("%an <%ae>") == "gitops-bot <gitops-bot@localhost>"
    assert "\nApproved-by: auto (no approval policy)\n" in world.remote.field("%B")


def test_commit_refuses_a_request_that_is_not_approved(world: World) -> None:
    promotion = world.request(world.service.plan("api", "staging"))
    head = world.remote.head()
    with pytest.raises(UserError, match="pending, not approved"):
        world.service.commit(promotion, approvers=[], author_name=None, author_email=None)
    assert world.remote.head() == head


def test_competing_push_to_the_same_file_is_a_conflict(world: World) -> None:
    promotion = world.approved(world.service.plan("api", "staging"))
    theirs = kustomization("api", "staging", TAGS["staging"]).replace("count: 2", "count: 5")
    competitor = world.remote.commit({STAGING: theirs}, "scale api in staging")
    with pytest.raises(GitConflict) as caught:
        world.service.commit(
            promotion, approvers=["U0BOSS"], author_name="Dana", author_email="d@example.com"
        )
    assert caught.value.paths == (STAGING,)
    assert world.remote.head() == competitor
    assert world.remote.subjects()[0] == "scale api in staging"
    assert world.remote.show(STAGING) == theirs
    clone = world.repos.ensure("deploy")
    assert sh(clone, "status", "--porcelain", "--untracked-files=all") == ""


def test_competing_push_to_the_same_file_during_the_push_is_a_conflict(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst moment: the competitor pushes after the edit read the branch, before our push."""
    promotion = world.approved(world.service.plan("api", "staging"))
    theirs = kustomization("api", "staging", "1.4.9")
    pushed: list[str] = []

    def read_then_compete(clone: Path, sha: str, paths: list[str]) -> dict[str, str | None]:
        found = read_files(clone, sha, paths)
        if not pushed:
            pushed.append(world.remote.commit({STAGING: theirs}, "staging hotfix"))
        return found

    monkeypatch.setattr("services.promotion.service.read_files", read_then_compete)
    with pytest.raises(GitConflict) as caught:
        world.service.commit(promotion, approvers=["U0BOSS"], author_name=None, author_email=None)
    assert caught.value.paths == (STAGING,)
    assert world.remote.head() == pushed[0]
    assert world.remote.subjects()[:2] == ["staging hotfix", "Initial commit"]
    assert world.remote.show(STAGING) == theirs


def test_competing_push_to_another_file_is_absorbed(world: World) -> None:
    plan = world.service.plan("api", "staging")
    promotion = world.approved(plan)
    other = world.remote.commit({"README.md": "moved on\n"}, "docs")
    assert world.service.still_current(promotion) is None
    world.service.commit(promotion, approvers=["U0BOSS"], author_name=None, author_email=None)
    assert world.remote.field("%P") == other
    assert remote_diff(world) == plan.diff
    assert world.remote.show("README.md") == "moved on\n"


def test_two_apps_promoted_concurrently_both_land(world: World) -> None:
    service: PromotionService = world.service
    promotions = [world.request(service.plan(app, "staging"), approvals_required=0) for app in ("api", "web")]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait()
        try:
            service.commit(promotions[index], approvers=[], author_name=None, author_email=None)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    subjects = world.remote.subjects()[:2]
    assert sorted(s.split(":")[0] for s in subjects) == ["promote api to staging", "promote web to staging"]
    for app in ("api", "web"):
        assert '    newTag: "1.4.3"  # bumped by promotion' in world.remote.show(path_of(app, "staging"))
    assert sorted(p.name for p in (world.repos.ensure("deploy").parent).iterdir()) == ["deploy"]
