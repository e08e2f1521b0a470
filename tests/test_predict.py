"""predict_1.py / predict_2.py: the command line a user meets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import checkpoint
import create_model_1
import imageprepare
import notadigit
import predict
import predict_1
import predict_2
import readnumber
from create_model_2 import DeepCNN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model1_ckpt(mnist_dir, tmp_path_factory):
    prefix = str(tmp_path_factory.mktemp("ckpt1") / "model.ckpt")
    create_model_1.main(["--steps", "300", "--data-dir", mnist_dir, "--checkpoint", prefix])
    return prefix


def user_file(array, path, scale=8, margin=60):
    """A MNIST digit as a person would hand it over: enlarged, black ink on white paper, margins."""
    ink = Image.fromarray(np.uint8(array.reshape(28, 28) * 255)).resize(
        (28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    page = Image.new("L", (28 * scale + 2 * margin, 28 * scale + 2 * margin), 0)
    page.paste(ink, (margin, margin))
    Image.fromarray(255 - np.asarray(page)).save(path)
    return str(path)


def number_file(arrays, path, scale=6, gap=20):
    """Digits side by side on white paper, as a written number."""
    tiles = [Image.fromarray(np.uint8(a.reshape(28, 28) * 255)).resize((28 * scale, 28 * scale),
                                                                       Image.Resampling.BICUBIC)
             for a in arrays]
    width = sum(t.width for t in tiles) + gap * (len(tiles) + 3)
    page = Image.new("L", (width, 28 * scale + 80), 0)
    x = 2 * gap
    for tile in tiles:
        page.paste(tile, (x, 40), tile)
        x += tile.width + gap
    Image.fromarray(255 - np.asarray(page)).save(path)
    return str(path)


def run_predict(script, *args):
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=120)


def test_no_image_gives_usage_and_exit_2_not_an_index_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_2.main([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "no image given" in err


def test_one_image_prints_the_digit_alone(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "seven.png")
    assert predict_2.main([path, "--checkpoint", model2_ckpt]) == 0
    assert capsys.readouterr().out == f"{mnist.test.labels[0]}\n"


def test_several_images_print_one_line_each_with_path_and_probability(mnist, model2_ckpt, tmp_path, capsys):
    paths = [user_file(mnist.test.images[i], tmp_path / f"d{i}.png") for i in range(3)]
    assert predict_2.main([*paths, "--checkpoint", model2_ckpt]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for path, line, label in zip(paths, lines, mnist.test.labels):
        assert line.startswith(f"{path}: {label} (") and line.endswith("%)")


def test_a_folder_is_read_image_by_image(mnist, model2_ckpt, tmp_path, capsys):
    for i in range(4):
        user_file(mnist.test.images[i], tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert predict_2.main([str(tmp_path), "--checkpoint", model2_ckpt]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_json_gives_digit_probability_and_top_three(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[1], tmp_path / "two.png")
    predict_2.main(["--json", path, "--checkpoint", model2_ckpt])
    record = json.loads(capsys.readouterr().out)
    assert record["image"] == path and record["digit"] == mnist.test.labels[1]
    assert record["number"] == str(mnist.test.labels[1])
    assert len(record["top"]) == 3 and record["top"][0] == [record["digit"], record["probability"]]
    assert [p for _, p in record["top"]] == sorted((p for _, p in record["top"]), reverse=True)
    assert 0 < record["probability"] <= 1


def test_unreadable_file_is_one_line_and_the_others_are_still_answered(mnist, model2_ckpt, tmp_path, capsys):
    good = user_file(mnist.test.images[2], tmp_path / "good.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert predict_2.main([str(bad), good, "--checkpoint", model2_ckpt]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert captured.out.startswith(f"{good}: {mnist.test.labels[2]} (")
    assert len(captured.err.splitlines()) == 1 and "broken.png" in captured.err


def test_json_reports_an_unreadable_file_as_an_error_record(model2_ckpt, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    assert predict_2.main(["--json", str(blank), "--checkpoint", model2_ckpt]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record == {"image": str(blank), "error": f"no digit found in {blank}"}


def test_missing_checkpoint_is_one_line_that_says_how_to_train_it(mnist, tmp_path):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    result = subprocess.run([sys.executable, str(ROOT / "predict_2.py"), path], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "predict_2.py: error: model2.ckpt not found — train it with: python create_model_2.py")
    assert "Traceback" not in result.stderr


def test_model1_checkpoint_given_to_predict_2_names_both_models(mnist, model1_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    with pytest.raises(checkpoint.CheckpointError, match="softmax-regression.*deep-mnist-cnn"):
        predict_2.main([path, "--checkpoint", model1_ckpt])


def test_predict_1_reads_digits_with_the_softmax_model(mnist, model1_ckpt, tmp_path, capsys):
    paths = [user_file(mnist.test.images[i], tmp_path / f"{i}.png") for i in range(10)]
    predict_1.main(["--json", *paths, "--checkpoint", model1_ckpt])
    digits = [json.loads(line)["digit"] for line in capsys.readouterr().out.splitlines()]
    assert np.mean(np.array(digits) == mnist.test.labels[:10]) >= 0.7


def test_save_prepared_writes_what_the_network_sees(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[3], tmp_path / "digit.png")
    predict_2.main([path, "--save-prepared", str(tmp_path / "seen"), "--checkpoint", model2_ckpt])
    small = np.asarray(Image.open(tmp_path / "seen" / "digit.png"), dtype=np.float32) / 255
    big = Image.open(tmp_path / "seen" / "digit_x10.png")
    assert small.shape == (28, 28) and big.size == (280, 280)
    np.testing.assert_allclose(small, imageprepare.prepare(path), atol=1 / 255)


def test_batched_prediction_equals_one_by_one(mnist, model2_ckpt, tmp_path, capsys):
    paths = [user_file(mnist.test.images[i], tmp_path / f"{i}.png", margin=10 + 7 * i) for i in range(12)]
    predict_2.main(["--json", *paths, "--checkpoint", model2_ckpt])
    together = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    alone = []
    for path in paths:
        predict_2.main(["--json", path, "--checkpoint", model2_ckpt])
        alone.append(json.loads(capsys.readouterr().out))
    assert [r["digit"] for r in together] == [r["digit"] for r in alone]
    np.testing.assert_allclose([r["probability"] for r in together], [r["probability"] for r in alone],
                               atol=1e-4)


def test_mnist_digit_as_user_file_predicts_as_the_raw_array(mnist, model2_ckpt, tmp_path):
    model = DeepCNN()
    checkpoint.restore_checkpoint(model, model2_ckpt)
    raw = mnist.test.images[:40]
    prepared = np.stack([imageprepare.prepare(user_file(a, tmp_path / f"{i}.png")) for i, a in enumerate(raw)])
    same = np.argmax(model(raw).numpy(), 1) == np.argmax(model(prepared.reshape(-1, 784)).numpy(), 1)
    assert same.mean() >= 0.95


def test_a_written_number_is_read_whole(mnist, model2_ckpt, tmp_path, capsys):
    labels = mnist.test.labels
    picks = [int(np.flatnonzero(labels == d)[0]) for d in (2, 0, 2, 6)]
    path = number_file([mnist.test.images[i] for i in picks], tmp_path / "year.png")
    predict_2.main(["--json", path, "--checkpoint", model2_ckpt])
    record = json.loads(capsys.readouterr().out)
    assert record["number"] == "2026"
    assert [d["digit"] for d in record["digits"]] == [2, 0, 2, 6]
    lefts = [d["box"][0] for d in record["digits"]]
    assert lefts == sorted(lefts)
    # The whole number's confidence weighs the other readings too: never above its weakest digit's.
    assert 0 < record["probability"] <= min(d["probability"] for d in record["digits"]) + 1e-4
    assert all(text != "2026" and 0 <= p <= 1 - record["probability"] + 1e-4 for text, p in record["alternatives"])
    predict_2.main([path, "--checkpoint", model2_ckpt])
    assert capsys.readouterr().out == "2026\n"


def test_single_flag_reads_a_number_image_as_one_digit(mnist, model2_ckpt, tmp_path, capsys):
    path = number_file(mnist.test.images[:3], tmp_path / "n.png")
    predict_2.main(["--json", "--single", path, "--checkpoint", model2_ckpt])
    assert len(json.loads(capsys.readouterr().out)["digits"]) == 1


# --------------------------------------------------------------------------
# "Not a digit"
# --------------------------------------------------------------------------

def with_threshold(model2_ckpt, folder, threshold):
    """A copy of the test CNN whose "not a digit" threshold is `threshold` (a margin)."""
    model, score = DeepCNN(), notadigit.DigitScore()
    checkpoint.restore_checkpoint(model, model2_ckpt)
    score.threshold.assign(threshold)
    return checkpoint.save_checkpoint(model, str(Path(folder) / "strict.ckpt"), extras={score.NAME: score})


def test_a_refused_image_prints_a_question_mark_and_exits_0(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    strict = with_threshold(model2_ckpt, tmp_path, 1e6)  # nothing is digit enough
    assert predict_2.main([path, "--checkpoint", strict]) == 0
    assert capsys.readouterr().out == "?\n"
    assert predict_2.main([path, path, "--checkpoint", strict]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{path}: ? (not a digit)"] * 2


def test_json_of_a_refused_digit_keeps_the_networks_guess_and_score(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    predict_2.main(["--json", path, "--checkpoint", with_threshold(model2_ckpt, tmp_path, 1e6)])
    record = json.loads(capsys.readouterr().out)
    assert record["digit"] is None and record["rejected"] is True and record["number"] == "?"
    assert record["guess"] == mnist.test.labels[0] and 0 <= record["score"] < 0.5


def test_accept_all_answers_a_digit_even_below_the_threshold(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    assert predict_2.main([path, "--accept-all", "--checkpoint", with_threshold(model2_ckpt, tmp_path, 1e6)]) == 0
    assert capsys.readouterr().out == f"{mnist.test.labels[0]}\n"


def test_a_digit_above_the_threshold_is_not_refused(mnist, model2_ckpt, tmp_path, capsys):
    path = user_file(mnist.test.images[0], tmp_path / "d.png")
    assert predict_2.main([path, "--checkpoint", with_threshold(model2_ckpt, tmp_path, -1e6)]) == 0
    assert capsys.readouterr().out == f"{mnist.test.labels[0]}\n"


def test_a_checkpoint_without_a_threshold_still_predicts_and_says_so_once(mnist, model2_ckpt, tmp_path, capsys):
    model = DeepCNN()
    checkpoint.restore_checkpoint(model, model2_ckpt)
    old = checkpoint.save_checkpoint(model, str(tmp_path / "old.ckpt"))  # as saved before the score existed
    paths = [user_file(mnist.test.images[i], tmp_path / f"{i}.png") for i in range(2)]
    assert predict_2.main([*paths, "--checkpoint", old]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    (note,) = captured.err.splitlines()
    assert "no \"not a digit\" threshold" in note and "retrain" in note


def digit(value, digitness):
    """A readnumber.Digit read as `value` at 91 % with this digitness."""
    probs = np.full(10, 0.01, np.float32)
    probs[value] = 0.91
    return readnumber.Digit(value, np.zeros((28, 28), np.float32), (0, 0, 1, 1), probs, digitness)


def test_a_piece_of_a_number_that_is_no_digit_becomes_a_question_mark():
    reading = readnumber.Reading("2046", 0.8, [digit(2, 0.9), digit(0, 0.8), digit(4, 0.1), digit(6, 0.7)],
                                 [("2016", 0.1)])
    record = predict.record("n.png", reading)
    assert record["number"] == "20?6"
    assert record["digits"][2]["digit"] is None and record["digits"][2]["guess"] == 4
    assert record["alternatives"] == [["2016", 0.1]]
    assert predict.record("n.png", reading, accept_all=True)["number"] == "2046"


def test_a_doubtful_piece_beside_a_clear_digit_is_read_but_a_doubtful_one_alone_is_refused():
    doubtful = (predict.AMONG_DIGITS + 0.5) / 2
    pair = predict.record("n.png", readnumber.Reading("90", 0.7, [digit(9, 0.95), digit(0, doubtful)], []))
    assert pair["number"] == "90" and "rejected" not in pair["digits"][1]
    alone = predict.record("o.png", readnumber.Reading("0", 0.7, [digit(0, doubtful)], []))
    assert alone["number"] == "?" and alone["rejected"] is True
    both = predict.record("m.png", readnumber.Reading("00", 0.7, [digit(0, doubtful), digit(0, doubtful)], []))
    assert both["number"] == "?"


def test_ink_of_which_no_piece_is_a_digit_is_one_question_mark_not_several():
    reading = readnumber.Reading("47", 0.6, [digit(4, 0.2), digit(7, 0.3)], [])
    record = predict.record("smiley.png", reading)
    assert record["number"] == "?" and record["rejected"] is True
    assert [d["guess"] for d in record["digits"]] == [4, 7]
    assert predict.record("smiley.png", reading, accept_all=True)["number"] == "47"


def test_a_reading_the_reader_found_no_number_refuses_every_piece_however_digit_like():
    # Strokes leaning apart (a V cut into two 1s, readnumber._LEAN_APART): "?", guesses kept.
    reading = readnumber.Reading("?", 0.9, [digit(1, 0.99), digit(1, 0.98)], [("11", 0.9)])
    record = predict.record("v.png", reading)
    assert record["number"] == "?" and record["rejected"] is True
    assert [d["guess"] for d in record["digits"]] == [1, 1]
    assert [d["score"] for d in record["digits"]] == [0.99, 0.98]


# --------------------------------------------------------------------------
# Folders and names
# --------------------------------------------------------------------------

def test_a_folder_without_images_next_to_an_image_is_one_error_line_and_exit_1(mnist, model2_ckpt, tmp_path,
                                                                               capsys):
    good = user_file(mnist.test.images[0], tmp_path / "d.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    assert predict_2.main([good, str(empty), "--checkpoint", model2_ckpt]) == 1
    captured = capsys.readouterr()
    (answer,) = captured.out.splitlines()
    assert answer.startswith(f"{good}: {mnist.test.labels[0]} (")
    (line,) = captured.err.splitlines()
    assert line.startswith("predict_2.py: error: no image files") and str(empty) in line


def test_a_folder_that_cannot_be_listed_is_one_message_naming_it(tmp_path, monkeypatch):
    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)
    files, problems = predict.expand([str(tmp_path), "x.png"])
    assert files == ["x.png"]
    assert problems == [(str(tmp_path), f"cannot read folder {tmp_path}: Permission denied")]


def test_names_that_are_not_utf8_or_hold_a_newline_are_printed_escaped_on_one_line(mnist, model2_ckpt, tmp_path):
    names = [os.fsdecode(b"bad\xff.png"), "two\nlines.png"]
    for i, name in enumerate(names):
        user_file(mnist.test.images[i], tmp_path / name)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([sys.executable, str(ROOT / "predict_2.py"), "--checkpoint", model2_ckpt,
                             *(str(tmp_path / n) for n in names)], capture_output=True, text=True, env=env,
                            timeout=120, errors="surrogateescape")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path}/bad\\xff.png: ") and lines[1].startswith(f"{tmp_path}/two\\nlines.png: ")
