"""Each corpus recipe end to end on tiny data: paper-profile fetches come from a local HTTP server."""
from __future__ import annotations

import csv
import os
import tarfile

import pytest

from pipeline.config import parse_params
from pipeline.shards import file_sha256
from pipeline.corpora.prepare import prepare_corpus
from pipeline.corpora.recipes import fetch_corpus, list_recordings
from pipeline.corpora.registry import corpus_config
from pipeline.shards import read_manifest
from pipeline.testing.audio import noise, repo_params_raw, tone, write_sc09_layout, write_wav
from pipeline.testing.http_server import LocalHTTPServer


def _tar(path, folder, arcname=""):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=arcname or ".")
    return path


def _paper(**corpora):
    raw = repo_params_raw()
    raw["profile"] = "paper"
    for name, edit in corpora.items():
        raw["corpora"][name]["paper"].update(edit)
    return raw


def test_sc09_downloads_verifies_extracts_digits_only_and_lists_splits(tmp_path):
    corpus = write_sc09_layout(tmp_path / "src", digits=("zero", "one"), speakers=3)
    write_wav(corpus / "backward" / "x_nohash_0.wav", tone(0.5, 16000), 16000)  # a non-digit word
    served = tmp_path / "served"
    served.mkdir()
    archive = _tar(served / "speech_commands_v0.02.tar.gz", corpus)
    with LocalHTTPServer(served) as url:
        raw = _paper(sc09={"url": f"{url}/speech_commands_v0.02.tar.gz", "sha256": file_sha256(archive)})
        raw["corpora"]["sc09"]["digits"] = ["zero", "one"]
        params = parse_params(raw)
        fetch_corpus("sc09", params, tmp_path / "raw", tmp_path / "downloads")
    assert not (tmp_path / "raw" / "backward").exists()
    recordings, excluded = list_recordings("sc09", params, tmp_path / "raw")
    assert excluded == [] and len(recordings) == 6
    assert {r.split for r in recordings if r.speaker == "spk00000"} == {"valid"}
    assert {r.split for r in recordings if r.speaker == "spk00001"} == {"test"}
    assert {(r.label, r.source_file) for r in recordings if r.speaker == "spk00002"} == {
        ("zero", "zero/spk00002_nohash_0.wav"), ("one", "one/spk00002_nohash_0.wav")}


def test_sc09_with_a_wrong_checksum_stops_before_extracting(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _tar(served / "sc.tar.gz", write_sc09_layout(tmp_path / "src"))
    with LocalHTTPServer(served) as url:
        params = parse_params(_paper(sc09={"url": f"{url}/sc.tar.gz", "sha256": "0" * 64}))
        with pytest.raises(ValueError, match="sha256"):
            fetch_corpus("sc09", params, tmp_path / "raw", tmp_path / "downloads")
    assert not any((tmp_path / "raw").glob("*/*.wav"))


def test_grid_downloads_one_archive_per_speaker_and_splits_by_utterance(tmp_path):
    served = tmp_path / "served"
    for speaker in ("s1", "s4"):
        folder = tmp_path / "src" / speaker
        for i, code in enumerate(("bbaf2n", "lgiz5a", "pwwq1s", "srbu9p")):
            write_wav(folder / f"{code}.wav", tone(3.0, 25000, 150.0 + 10 * i), 25000)
        served.mkdir(exist_ok=True)
        _tar(served / f"{speaker}.tar", folder, arcname=speaker)
    with LocalHTTPServer(served) as url:
        params = parse_params(_paper(grid={"url_template": url + "/{speaker}.tar"}))
        fetch_corpus("grid", params, tmp_path / "raw", tmp_path / "downloads")
    recordings, _ = list_recordings("grid", params, tmp_path / "raw")
    assert len(recordings) == 8
    assert {r.gender for r in recordings if r.speaker == "s4"} == {"female"}
    report = prepare_corpus("grid", params, tmp_path / "raw", tmp_path / "clips", progress=False)
    assert report["clips_total"] == 24  # 3 s each -> three 1-s clips


def _manifest(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "url", "sha256", "licence", "title", "label",
                                                    "contains_speech"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_movie_sfx_reports_failed_downloads_and_excludes_speech(tmp_path):
    served = tmp_path / "served"
    rain = write_wav(served / "rain.wav", noise(2.5, 22050, seed=1), 22050)
    write_wav(served / "talk.wav", noise(1.0, 22050, seed=2), 22050)
    with LocalHTTPServer(served) as url:
        manifest = _manifest(tmp_path / "manifest.csv", [
            {"file": "rain.wav", "url": f"{url}/rain.wav", "sha256": file_sha256(rain), "licence": "CC0",
             "title": "Rain", "label": "rain", "contains_speech": "false"},
            {"file": "wind.wav", "url": f"{url}/missing.wav", "sha256": "", "licence": "CC0", "title": "Wind",
             "label": "", "contains_speech": "false"},
            {"file": "talk.wav", "url": f"{url}/talk.wav", "sha256": "", "licence": "CC0", "title": "Talk",
             "label": "", "contains_speech": "true"},
        ])
        params = parse_params(_paper(movie_sfx={"manifest": str(manifest)}))
        fetch_corpus("movie_sfx", params, tmp_path / "raw", tmp_path / "downloads")
    report = prepare_corpus("movie_sfx", params, tmp_path / "raw", tmp_path / "clips", progress=False)
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    assert reasons["talk.wav"].startswith("excluded: contains speech")
    assert reasons["wind.wav"].startswith("download failed") and "missing.wav" in reasons["wind.wav"]
    assert report["recordings_used"] == 1 and report["clips_total"] == 3


@pytest.mark.parametrize("bad, message", [
    ({"contains_speech": "maybe"}, "contains_speech 'maybe'"),
    ({"file": "../escape.wav"}, "must be a plain file name"),
])
def test_movie_sfx_manifest_errors_name_the_line(tmp_path, bad, message):
    row = {"file": "a.wav", "url": "http://127.0.0.1:9/a.wav", "sha256": "", "licence": "", "title": "",
           "label": "", "contains_speech": "false", **bad}
    params = parse_params(_paper(movie_sfx={"manifest": str(_manifest(tmp_path / "m.csv", [row]))}))
    with pytest.raises(ValueError, match=r"m\.csv, line 2: .*" + message.replace("(", r"\(")):
        fetch_corpus("movie_sfx", params, tmp_path / "raw", tmp_path / "downloads")


def test_folder_corpus_from_subfolders(tmp_path):
    for label in ("dog", "door"):
        for i in range(3):
            write_wav(tmp_path / "mine" / label / f"{i}.flac", noise(1.5, 44100, seed=i), 44100)
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": "subfolders"}}
    params = parse_params(raw)
    recordings, _ = list_recordings("mine", params, None)
    assert sorted({r.label for r in recordings}) == ["dog", "door"] and len(recordings) == 6
    report = prepare_corpus("mine", params, None, tmp_path / "clips", progress=False)
    assert report["clips_total"] == 12  # 1.5 s -> one clip + a 0.5 s tail kept, per file
    assert sum(read_manifest(tmp_path / "clips" / s)["rows"] for s in ("train", "valid", "test")) == 12


def test_folder_corpus_from_csv_with_speakers_and_explicit_splits(tmp_path):
    for i in range(4):
        write_wav(tmp_path / "mine" / "audio" / f"{i}.wav", tone(1.0, 16000, 300 + 50 * i), 16000)
    (tmp_path / "mine" / "labels.csv").write_text(
        "path,label,speaker,gender,split\n"
        "audio/0.wav,anna,anna,female,train\naudio/1.wav,anna,anna,female,train\n"
        "audio/2.wav,bob,bob,male,test\naudio/3.wav,bob,bob,male,valid\n")
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": str(tmp_path / "mine" / "labels.csv")}}
    recordings, _ = list_recordings("mine", parse_params(raw), None)
    assert [(r.source_file, r.split, r.gender) for r in recordings] == [
        ("audio/0.wav", "train", "female"), ("audio/1.wav", "train", "female"),
        ("audio/2.wav", "test", "male"), ("audio/3.wav", "valid", "male")]
    (tmp_path / "mine" / "labels.csv").write_text("file,class\naudio/0.wav,x\n")
    with pytest.raises(ValueError, match="expected at least path,label"):
        list_recordings("mine", parse_params(raw), None)


def _csv_folder(tmp_path, rows, *, files=("a.wav", "b.wav")):
    for i, name in enumerate(files):
        write_wav(tmp_path / "mine" / name, tone(1.0, 16000, 300 + 50 * i), 16000)
    (tmp_path / "mine" / "labels.csv").write_text("path,label,split\n" + "".join(f"{row}\n" for row in rows))
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": str(tmp_path / "mine" / "labels.csv")}}
    return parse_params(raw)


@pytest.mark.parametrize("rows, message", [
    (["a.wav,x,train", "../outside.wav,x,train"], r"labels\.csv, line 3: path '\.\./outside\.wav' lies outside"),
    (["a.wav,x,train", "{outside},x,test"], r"labels\.csv, line 3: path '.*outside\.wav' lies outside"),
    (["a.wav,x,train", "b.wav,x,train", "a.wav,x,train"],
     r"labels\.csv, line 2 \(train\) and .*labels\.csv, line 4 \(train\) list the same file a\.wav"),
    (["a.wav,x,train", "./a.wav,x,test"],
     r"labels\.csv, line 2 \(train\) and .*labels\.csv, line 3 \(test\) list the same file a\.wav"),
])
def test_folder_csv_rows_outside_the_folder_or_listed_twice_are_refused_naming_the_rows(tmp_path, rows, message):
    write_wav(tmp_path / "outside.wav", tone(1.0, 16000), 16000)
    params = _csv_folder(tmp_path, [row.format(outside=tmp_path / "outside.wav") for row in rows])
    with pytest.raises(ValueError, match=message):
        list_recordings("mine", params, None)


def test_folder_csv_link_leading_out_of_the_folder_is_refused(tmp_path):
    write_wav(tmp_path / "outside.wav", tone(1.0, 16000), 16000)
    params = _csv_folder(tmp_path, ["a.wav,x,train", "link.wav,x,test"])
    (tmp_path / "mine" / "link.wav").symlink_to(tmp_path / "outside.wav")
    with pytest.raises(ValueError, match=r"line 3: path 'link\.wav' lies outside"):
        list_recordings("mine", params, None)


def test_a_label_file_that_is_not_utf8_or_lies_outside_the_folder_is_a_clear_error(tmp_path):
    params = _csv_folder(tmp_path, ["a.wav,x,train"])
    (tmp_path / "mine" / "labels.csv").write_bytes("path,label\na.wav,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"labels\.csv, line 2: not UTF-8 text \(byte 0xe9 at offset 20\); save the label"):
        list_recordings("mine", params, None)
    (tmp_path / "labels.csv").write_text("path,label\nmine/a.wav,x\n")
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": str(tmp_path / "labels.csv")}}
    with pytest.raises(ValueError, match=r"label file .*labels\.csv lies outside the folder"):
        list_recordings("mine", parse_params(raw), None)


def test_folder_files_with_non_utf8_names_or_outside_the_layout_are_counted_listed_skips(tmp_path):
    for label in ("dog", "door"):
        write_wav(tmp_path / "mine" / label / "ok.wav", tone(1.0, 16000), 16000)
    good = write_wav(tmp_path / "mine" / "dog" / "cafe.wav", tone(1.0, 16000), 16000)
    os.rename(good, os.fsencode(good.parent) + b"/caf\xe9.wav")  # a Latin-1 name: not valid UTF-8
    write_wav(tmp_path / "mine" / "loose.wav", tone(1.0, 16000), 16000)
    raw = repo_params_raw()
    raw["folders"] = {"mine": {"path": str(tmp_path / "mine"), "labels": "subfolders"}}
    params = parse_params(raw)
    recordings, skipped = list_recordings("mine", params, None)
    assert [r.source_file for r in recordings] == ["dog/ok.wav", "door/ok.wav"]
    assert skipped == [{"file": "dog/caf\\xe9.wav", "reason": "file name: not valid UTF-8; rename the file to include it"},
                       {"file": "loose.wav", "reason": "layout: not in a label sub-folder (labels: subfolders)"}]
    report = prepare_corpus("mine", params, None, tmp_path / "clips", progress=False)
    assert report["recordings_used"] == 2 and report["recordings_skipped"] == 2
    assert report["skipped_by_reason"] == {"file name": 1, "layout": 1}


def test_grid_archives_without_a_pinned_sha256_are_locked_on_first_use_and_a_changed_archive_stops_the_fetch(tmp_path):
    import json
    import shutil

    from pipeline.corpora.download import ChecksumError

    served, lock = tmp_path / "served", tmp_path / "downloads.lock.json"
    for speaker in ("s1", "s4"):
        write_wav(tmp_path / "src" / speaker / "bbaf2n.wav", tone(1.0, 25000), 25000)
        served.mkdir(exist_ok=True)
        _tar(served / f"{speaker}.tar", tmp_path / "src" / speaker, arcname=speaker)
    with LocalHTTPServer(served) as url:
        params = parse_params(_paper(grid={"url_template": url + "/{speaker}.tar"}))
        fetch_corpus("grid", params, tmp_path / "raw", tmp_path / "downloads", lock=lock)
        assert sorted(json.loads(lock.read_text())["files"]) == [f"{url}/s1.tar", f"{url}/s4.tar"]
        write_wav(tmp_path / "src" / "s4" / "bbaf2n.wav", tone(1.0, 25000, 300.0), 25000)  # upstream changes s4
        _tar(served / "s4.tar", tmp_path / "src" / "s4", arcname="s4")
        shutil.rmtree(tmp_path / "downloads")
        with pytest.raises(ChecksumError, match=rf"checksum mismatch for {url}/s4\.tar: expected sha256 [0-9a-f]{{64}} "
                                                r"\(recorded in .*downloads\.lock\.json"):
            fetch_corpus("grid", params, tmp_path / "raw", tmp_path / "downloads", lock=lock)


def _latin1_rename(path):
    """Rename `path` to a name holding a Latin-1 byte (not valid UTF-8); returns the name as a report prints it."""
    os.rename(path, os.fsencode(path.parent) + b"/caf\xe9.wav")
    return "caf\\xe9.wav"


def test_sc09_and_grid_files_with_non_utf8_names_are_counted_listed_skips_not_a_crash(tmp_path):
    params = parse_params(repo_params_raw())
    sc09 = write_sc09_layout(tmp_path / "sc09", digits=corpus_config(params, "sc09").digits, speakers=2)
    shown = _latin1_rename(next((sc09 / "zero").glob("*.wav")))
    recordings, skipped = list_recordings("sc09", params, sc09)
    assert skipped == [{"file": f"zero/{shown}", "reason": "file name: not valid UTF-8; rename the file to include it"}]
    assert recordings and all(r.source_file.isprintable() for r in recordings)

    grid = tmp_path / "grid"
    speakers = sorted(corpus_config(params, "grid").speakers)
    for speaker in speakers:
        for n in range(2):
            write_wav(grid / speaker / f"u{n}.wav", tone(1.0, 16000), 16000)
    speaker = speakers[0]
    shown = _latin1_rename(grid / speaker / "u0.wav")
    recordings, skipped = list_recordings("grid", params, grid)
    assert skipped == [{"file": f"{speaker}/{shown}", "reason": "file name: not valid UTF-8; rename the file to include it"}]
    assert len(recordings) == 2 * len(speakers) - 1
