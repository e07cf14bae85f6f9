"""Tests of scripts/eval_protocol.py: the train/validation split, the schedule, the statistics,
and that the protocol reads test text only after its choices are frozen (a fake `adak` records
every text it is asked to read)."""
import hashlib, json, math, os, shutil, subprocess, sys, tempfile, unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import eval_protocol as ep

FAKE_ADAK = r'''#!/usr/bin/env python3
# stands in for `adak eval-routing`: logs the text it reads, answers with made-up numbers
import hashlib, json, os, sys
a = sys.argv[1:]
open(os.environ["FAKE_ADAK_LOG"], "a").write(a[a.index("--text") + 1] + "\n")
h = int(hashlib.sha256(" ".join(a).encode()).hexdigest(), 16)
w = int(a[a.index("--windows") + 1])
frac = float(a[a.index("--budget") + 1]) if "--budget" in a else 1.0
if "--k-schedule" in a:
    ks = [int(k) for k in a[a.index("--k-schedule") + 1].split(",")]
    frac = sum(ks) / (8 * len(ks))
nll = [3 + ((h >> (4 * i)) % 16) / 16 + (1 - frac) for i in range(w)]
print(json.dumps({"ppl": 2.718281828 ** (sum(nll) / w), "stderr": 0, "expert_fraction": frac,
                  "mean_k_per_layer": [8 * frac] * 30, "window_nll": nll, "seconds": 0}))
'''


class SplitTests(unittest.TestCase):
    def test_split_is_disjoint_complete_and_deterministic(self):
        data = open(os.path.join(REPO, ep.TRAIN_TEXT), "rb").read()
        train, valid = ep.split_text(data)
        self.assertEqual(train + valid, data)
        self.assertEqual(ep.split_text(data), (train, valid))
        self.assertTrue(train.endswith(b"\n\n"))
        self.assertGreaterEqual(len(valid), ep.VALID_BYTES - 2000)
        self.assertLessEqual(len(valid), ep.VALID_BYTES)
        # the sha256 the committed split and RESULTS.md name
        self.assertEqual(hashlib.sha256(valid).hexdigest(),
                         "de85061e49eed9001398f1a174e8c182aff32030dda0d2b0a2d2d6ae3e601971")

    def test_trainer_prefix_never_reaches_validation(self):
        # `adak train-allocator` tokenizes at most (total_tokens + windows_per_update·window)·8 + 4096
        # bytes of --data (TrainAllocator.swift); the longest committed recipe samples 99 960 tokens
        data = open(os.path.join(REPO, ep.TRAIN_TEXT), "rb").read()
        train, _ = ep.split_text(data)
        window, rollout = 256, 1020
        per_update = (rollout + window - 2) // (window - 1)
        self.assertLess((99_960 + per_update * window) * 8 + 4096, len(train))

    def test_split_rejects_short_or_unbroken_text(self):
        with self.assertRaises(ValueError):
            ep.split_text(b"a\n\nb", valid_bytes=10)
        with self.assertRaises(ValueError):
            ep.split_text(b"x" * 100, valid_bytes=10)


class ScheduleAndStatsTests(unittest.TestCase):
    def test_schedule_meets_the_budget_and_cuts_insensitive_layers_first(self):
        sens = [0.5, 0.01, 0.2, 0.02]
        ks = ep.schedule(sens, 8, 0.75)
        self.assertEqual(sum(ks), round(0.75 * 4 * 8))
        self.assertEqual(ks[0], 8)
        self.assertLess(ks[1], ks[2])

    def test_paired_difference_and_standard_error(self):
        a, b = [1.0, 2.0, 3.0], [1.1, 2.1, 3.1]
        d, se = ep.paired(a, b)
        self.assertAlmostEqual(d, math.exp(-0.1) - 1)
        self.assertAlmostEqual(se, 0.0, places=12)
        p, pe = ep.ppl_se([1.0, 3.0])
        self.assertAlmostEqual(p, math.exp(2.0))
        self.assertAlmostEqual(pe, math.exp(2.0) * 1.0)


class ProtocolTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.out = os.path.join(self.dir, "out")
        os.makedirs(os.path.join(self.out, "data"))
        self.log = os.path.join(self.dir, "texts.log")
        os.environ["FAKE_ADAK_LOG"] = self.log
        self.adak = os.path.join(self.dir, "adak")
        open(self.adak, "w").write(FAKE_ADAK)
        os.chmod(self.adak, 0o755)
        self.model = os.path.join(self.dir, "model.gguf")
        open(self.model, "wb").write(b"model")
        self.valid = os.path.join(self.out, "data", "valid.txt")
        open(self.valid, "w").write("validation text\n")
        self.test_text = os.path.join(self.dir, "test.txt")
        open(self.test_text, "w").write("test text\n")
        self.allocs = []
        for name in ["a-s0", "a-s1", "b-s0", "b-s1"]:
            p = os.path.join(self.dir, name + ".gguf")
            open(p, "w").write(name)
            self.allocs.append(f"{name.replace('-', '/')}={p}")
        self.run_args = ["-m", self.model, "--adak", self.adak, "--nice", "0", "--jobs", "2", "--layers", "4"]

    def tearDown(self):
        shutil.rmtree(self.dir)

    def texts_read(self):
        return set(open(self.log).read().split()) if os.path.exists(self.log) else set()

    def validate(self, *extra):
        ep.main(["validate", "--out", self.out, "--windows", "3", "--calib-windows", "1", "--forbid", self.test_text]
                + self.run_args + [x for a in self.allocs for x in ("--allocator", a)] + list(extra))

    def run_test_stage(self):
        ep.main(["test", "--out", self.out, "--test", f"t={self.test_text}", "--no-plots"] + self.run_args)

    def test_test_stage_refuses_before_choices_are_frozen(self):
        with self.assertRaises(SystemExit):
            self.run_test_stage()
        self.validate("--run-only")
        with self.assertRaises(SystemExit):
            self.run_test_stage()
        self.assertNotIn(self.test_text, self.texts_read())

    def test_validation_reads_only_validation_text_then_test_reads_test(self):
        self.validate()
        self.assertEqual(self.texts_read(), {self.valid})
        c = json.load(open(os.path.join(self.out, "choices.json")))
        self.assertIn(c["recipe"], ("a", "b"))
        self.assertEqual(sorted(c["allocators"]), [f"{c['recipe']}/s0", f"{c['recipe']}/s1"])
        self.run_test_stage()
        self.assertEqual(self.texts_read(), {self.valid, self.test_text})
        md = open(os.path.join(self.out, "tables.md")).read()
        self.assertIn("≥ 5% lower than the schedule?", md)
        header = next(l for l in md.splitlines() if "Ada-K lowest of" in l)
        for fam in ["static Top-K", "Top-P", "β-skip", "entropy"]:
            self.assertIn(fam, header)
        tables = json.load(open(os.path.join(self.out, "tables.json")))
        self.assertEqual(sorted(tables["t"]["budgets"]), sorted(str(b) for b in ep.BUDGETS))

    def test_test_stage_refuses_edited_choices_or_allocators(self):
        self.validate()
        p = os.path.join(self.out, "choices.json")
        original = open(p).read()
        open(p, "w").write(original.replace('"windows": 3', '"windows": 4'))
        with self.assertRaises(SystemExit):
            self.run_test_stage()
        open(p, "w").write(original)
        c = json.loads(original)
        open(next(iter(c["allocators"].values())), "a").write("retrained")
        with self.assertRaises(SystemExit):
            self.run_test_stage()
        self.assertNotIn(self.test_text, self.texts_read())

    def test_replications_must_be_new_seeds_of_the_chosen_recipe(self):
        self.allocs = self.allocs[::2]      # one seed per recipe at the freeze
        self.validate()
        c = json.load(open(os.path.join(self.out, "choices.json")))
        other = "b" if c["recipe"] == "a" else "a"
        extra = os.path.join(self.dir, "late.gguf")
        open(extra, "w").write("late seed")
        for label in [f"{other}/s1", f"{c['recipe']}/s0"]:
            with self.assertRaises(SystemExit):
                ep.main(["test", "--out", self.out, "--test", f"t={self.test_text}", "--no-plots",
                         "--replicate", f"{label}={extra}"] + self.run_args)
        self.assertNotIn(self.test_text, self.texts_read())
        ep.main(["test", "--out", self.out, "--test", f"t={self.test_text}", "--no-plots",
                 "--replicate", f"{c['recipe']}/s1={extra}"] + self.run_args)
        self.assertIn("replication seed", open(os.path.join(self.out, "tables.md")).read())

    def test_only_the_best_threshold_families_reach_test(self):
        self.validate("--test-thresholds", "1", "--choose-budgets", "0.5,0.625")
        c = json.load(open(os.path.join(self.out, "choices.json")))
        self.assertEqual(len(c["thresholds"]), 1)
        self.assertEqual(c["chosen_on_budgets"], [0.5, 0.625])
        self.run_test_stage()
        header = next(l for l in open(os.path.join(self.out, "tables.md")).read().splitlines() if "Ada-K lowest of" in l)
        self.assertEqual(header.count(" / "), 1)

    def test_left_out_families_run_on_test_at_their_validation_caps(self):
        self.validate("--test-thresholds", "1", "--choose-budgets", "0.5,0.625")
        blob = open(os.path.join(self.out, "choices.json"), "rb").read()
        c = json.loads(blob)
        caps = ep.valid_caps(c["valid"], c["chosen_on_budgets"], [8, 16])
        mean = lambda n: sum(math.log(c["valid"][f"valid | {n} | B={b}"]["ppl"]) for b in (0.5, 0.625)) / 2
        for f, cap in caps.items():
            self.assertLessEqual(mean(f"{f} kmax={cap}"), min(mean(f"{f} kmax=8"), mean(f"{f} kmax=16")))
        ep.main(["test", "--out", self.out, "--test", f"t={self.test_text}", "--no-plots", "--all-thresholds"]
                + self.run_args)
        self.assertEqual(open(os.path.join(self.out, "choices.json"), "rb").read(), blob)   # still frozen
        md = open(os.path.join(self.out, "tables.md")).read()
        header = next(l for l in md.splitlines() if "Ada-K lowest of" in l)
        self.assertEqual(header.count(" / "), 3)
        self.assertEqual(md.count("not sent to test by validation"), 2)   # the two families left out
        tested = json.load(open(os.path.join(self.out, "test-results.json")))
        for f, cap in caps.items():
            self.assertIn(f"t | {f} kmax={cap} | B=0.75", tested)

    def test_validation_text_must_not_be_a_test_text(self):
        open(self.test_text, "w").write(open(self.valid).read())
        with self.assertRaises(SystemExit):
            self.validate()
        self.assertEqual(self.texts_read(), set())


if __name__ == "__main__":
    unittest.main()
