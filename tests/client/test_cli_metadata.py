"""`phantoscope import --attr`, `phantoscope search --where/--since/--until/--name-prefix` and
`phantoscope app entities`, run as the command itself against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli
from image_files import with_exif
from photos import edited_copy, jpeg, photo


def table_rows(output: str) -> list[list[str]]:
    """The cells of a printed table's rows."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def test_import_attributes_and_filters(server, client, gallery, tmp_path):
    env = {"PHANTOSCOPE_URL": server.url, "COLUMNS": "250"}
    app = gallery.app
    alps, sea = tmp_path / "alps", tmp_path / "sea"
    write(alps, {
        "2019/summer/coins.jpg": with_exif(photo("coins"), "2019:07:14 10:00:00",
                                           ("Canon", "Canon EOS 5D")),
        "2024/rocket.jpg": with_exif(photo("rocket"), "2024:03:01 09:00:00"),
        "2024/space/astronaut.jpg": with_exif(photo("astronaut"), "2024:08:02 18:30:00"),
        'say "cheese".jpg': jpeg(photo("chelsea")),  # no part header carries this name
    })
    write(sea, {"moon.jpg": jpeg(photo("moon")), "deep/horse.png": jpeg(photo("horse"))})

    # A bad --attr is refused before anything is read or sent.
    result = run_cli("import", app, str(alps), "--attr", "trip=alps", "--attr", "9th=x", env=env)
    assert result.returncode == 2 and "'9th' is not a valid attribute key" in result.stderr
    assert client.applications.count(app) == 0

    result = run_cli("import", app, str(alps), "--attr", "trip=alps", "--attr", "rating=5",
                     "--attr", "shared=true", "--attr", "tag=snow", "--attr", "tag=2019",
                     env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("import", app, str(sea), "--attr", "trip=sea", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    entities = {entity.name: entity for entity in client.entities.iterate(app)}
    assert set(entities) == {"2019/summer/coins.jpg", "2024/rocket.jpg",
                             "2024/space/astronaut.jpg", 'say "cheese".jpg', "moon.jpg",
                             "deep/horse.png"}
    assert entities["2024/rocket.jpg"].attributes == {
        "trip": "alps", "rating": 5, "shared": True, "tag": ["snow", "2019"]}
    assert entities["deep/horse.png"].attributes == {"trip": "sea"}
    ids = {name: entity.id for name, entity in entities.items()}

    # Search: the nearest of the matching images only; the table names each hit.
    query = tmp_path / "query.jpg"
    query.write_bytes(edited_copy(photo("rocket")))

    def search(*options: str) -> list[dict]:
        result = run_cli("search", app, str(query), "--json", *options, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    hits = search("--where", "trip=alps", "--since", "2024-01-01")
    assert [hit["name"] for hit in hits] == ["2024/rocket.jpg", "2024/space/astronaut.jpg"]
    assert hits[0]["id"] == ids["2024/rocket.jpg"]
    assert hits[0]["attributes"]["tag"] == ["snow", "2019"]
    assert hits[0]["exif"]["taken_at"].startswith("2024-03-01T09:00:00")
    assert [hit["name"] for hit in search("--until", "2020-01-01")] == ["2019/summer/coins.jpg"]
    assert [hit["name"] for hit in search("--name-prefix", "2024/space/")] == [
        "2024/space/astronaut.jpg"]
    assert {hit["name"] for hit in search("--where", "trip=sea")} == {"moon.jpg", "deep/horse.png"}
    assert [hit["name"] for hit in search("--where", "camera=Canon EOS 5D")] == [
        "2019/summer/coins.jpg"]
    assert {hit["name"] for hit in search("--where", "tag=snow", "--where", "shared=true",
                                          "--where", "rating=5")} == {
        "2019/summer/coins.jpg", "2024/rocket.jpg", "2024/space/astronaut.jpg", 'say "cheese".jpg'}
    result = run_cli("search", app, str(query), "--where", "trip=alps", "--since", "2024-01-01",
                     env=env)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [row[:3] for row in rows] == [
        ["1", str(ids["2024/rocket.jpg"]), "2024/rocket.jpg"],
        ["2", str(ids["2024/space/astronaut.jpg"]), "2024/space/astronaut.jpg"]]
    result = run_cli("search", app, str(query), "--where", "width=wide", env=env)
    assert result.returncode == 2 and "width takes a whole number" in result.stderr
    result = run_cli("search", app, str(query), "--since", "last week", env=env)
    assert result.returncode == 2 and "expected an ISO 8601 date or time" in result.stderr

    # app entities: all of them a page at a time, or those that match.
    result = run_cli("app", "entities", app, env=env)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [row[0] for row in rows] == [str(ids[name]) for name in sorted(ids, key=ids.get)]
    coins = next(row for row in rows if row[1] == "2019/summer/coins.jpg")
    assert coins[2].startswith("2019-07-14T10:00:00")
    assert coins[3] == 'trip=alps, rating=5, shared=true, tag=["snow", "2019"]'
    result = run_cli("app", "entities", app, "--num", "4", "--page", "2", env=env)
    assert [row[0] for row in table_rows(result.stdout)] == [row[0] for row in rows[4:]]
    assert "5-6" in result.stdout
    result = run_cli("app", "entities", app, "-n", "2", env=env)
    assert "1-2; more: --page 2" in result.stdout
    result = run_cli("app", "entities", app, "--where", "trip=sea", "--json", env=env)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [entity["name"] for entity in listed] == sorted(["moon.jpg", "deep/horse.png"],
                                                           key=ids.get)
    # two files of one import may be sent in either order: ids, not names, set the order
    assert [entity["id"] for entity in listed] == [ids[entity["name"]] for entity in listed]
    assert all(entity["attributes"] == {"trip": "sea"} for entity in listed)
    result = run_cli("app", "entities", app, "--since", "2024-01-01", "--until", "2024-06-01",
                     env=env)
    assert [row[1] for row in table_rows(result.stdout)] == ["2024/rocket.jpg"]
    result = run_cli("app", "entities", app, "--where", "trip=moon", env=env)
    assert result.returncode == 0 and "no matching entities on page 1" in result.stdout
