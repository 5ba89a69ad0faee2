from learning_machines.curation import distinguishing, is_substitution, richness, value_conflict


def test_value_conflicts() -> None:
    assert value_conflict("The user lives in London.", "The user lives in Berlin.")
    assert value_conflict("User has two children.", "User has three children.")
    assert value_conflict("Deploys happen every Tuesday.", "Deploys happen every Thursday.")
    assert not value_conflict("User has two children.", "The user has 2 kids.")
    assert not value_conflict("Carol is Alice's manager.", "Alice reports to Carol.")
    assert not value_conflict("User lives in London", "The user lives in London.")
    # Identifiers with digits inside are values too.
    assert value_conflict(
        "Falcon notes: amber cedar (k0101sgrl)", "Falcon notes: amber cedar (k0150kmgh)"
    )
    assert value_conflict("Runs on k8s in eu-west-1", "Runs on k8s in us-east-2")
    assert not value_conflict("Runs on k8s.", "It runs on k8s")


def test_substitutions() -> None:
    assert is_substitution("User prefers dark mode.", "User prefers light mode.")
    assert not is_substitution("User lives in London", "The user lives in London")
    assert not is_substitution("User likes tea", "User likes green tea in the morning")
    assert distinguishing("User plays tennis every weekend.", "User plays golf every weekend.")


def test_richness_prefers_more_content() -> None:
    assert richness("User likes tea with lemon in the morning") > richness("User likes tea")
