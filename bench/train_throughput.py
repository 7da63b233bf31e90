"""Training throughput: the project's Trainer against a tutorial-style PyTorch loop, in one process.

Both train the same 784-400-20-400-784 MLP VAE (ReLU, Bernoulli/BCE likelihood, Adam lr 1e-3,
batch 128) on the same MNIST training images. The reference is written the way
pytorch/examples vae/main.py writes it: torchvision MNIST + ToTensor + DataLoader(shuffle=True).
The run also measures the FLOPs of one training step of the project's model (matmul FLOPs, as
counted by torch.utils.flop_counter.FlopCounterMode) and a large fp32 matmul's GFLOP/s, so the
trainer's achieved GFLOP/s can be read against what this CPU's BLAS reaches on an ideal problem.

Measurements alternate (project, reference, matmul, project, ...) over --repeats so that drift
in the machine's load hits every one of them; the medians are printed and written into the
"## Training throughput" section of docs/benchmarks.md (other sections of that file are kept),
with the share of CPU time other processes used meanwhile (the 2-thread matmuls of the project
slow down many times over when another process competes for a core: read that share first) and
the GFLOP/s of the step's matmuls alone, the ceiling for an eager step.

    .venv/bin/python bench/train_throughput.py                # 5 repeats of one epoch each
    .venv/bin/python bench/train_throughput.py --repeats 3 --steps 60 --out /tmp/b.md
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import cpu_model, load_average, replace_section  # noqa: E402
from vae.config import ModelConfig, TrainConfig  # noqa: E402
from vae.data import DATA_DIR_ENV, load_dataset  # noqa: E402
from vae.loss import elbo_terms  # noqa: E402
from vae.model import VAE  # noqa: E402
from vae.train import Trainer  # noqa: E402

SECTION = "## Training throughput"
BATCH = 128
HIDDEN, LATENT = 400, 20
LR = 1e-3
MATMUL_N = 2048
SPEED_TARGET = 2.5  # project samples/s over reference samples/s
FAST_STEP_TARGET = 1.10  # the MLP's fast step (vae/mlp_step.py) over the same Trainer through autograd
FLOPS_TARGET = 0.75  # project GFLOP/s over the large matmul's GFLOP/s
NOISY_SHARE = 0.05  # above this median share of CPU time used by other processes, the verdicts are flagged


# --- the reference: pytorch/examples vae/main.py, as tutorials write it -------------------------


class RefVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def ref_loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


class Reference:
    """The tutorial's model, optimizer and DataLoader; `epoch()` is its train() loop."""

    def __init__(self, data_dir: Path, num_workers: int, limit: int | None):
        from torch.utils.data import DataLoader, Subset
        from torchvision import datasets, transforms

        torch.manual_seed(1)
        dataset = datasets.MNIST(str(data_dir), train=True, download=False, transform=transforms.ToTensor())
        if limit is not None and limit < len(dataset):
            dataset = Subset(dataset, range(limit))
        self.n = len(dataset)
        self.loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=num_workers)
        self.model = RefVAE()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)

    def epoch(self) -> tuple[int, float]:
        """One pass over the loader; returns (samples, seconds)."""
        self.model.train()
        train_loss, n = 0.0, 0
        t0 = time.perf_counter()
        for data, _ in self.loader:
            data = data.to("cpu")
            self.optimizer.zero_grad()
            recon_batch, mu, logvar = self.model(data)
            loss = ref_loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            self.optimizer.step()
            n += len(data)
        return n, time.perf_counter() - t0


# --- the project --------------------------------------------------------------------------------


def project_configs(data_dir: Path, limit: int | None) -> tuple[ModelConfig, TrainConfig]:
    model_cfg = ModelConfig(arch="mlp", hidden=(HIDDEN,), latent_dim=LATENT)
    train_cfg = TrainConfig(
        dataset="mnist", epochs=1000, batch_size=BATCH, lr=LR, device="cpu", data_dir=str(data_dir),
        train_limit=limit,
    )
    return model_cfg, train_cfg


def project_epoch(trainer: Trainer) -> tuple[int, float]:
    """One Trainer.train_epoch(), the method the CLI and the app run; returns (samples, seconds)."""
    t0 = time.perf_counter()
    record = trainer.train_epoch()
    seconds = time.perf_counter() - t0
    assert record is not None
    return len(trainer.x_train), seconds


def flops_per_sample(model_cfg: ModelConfig) -> tuple[float, dict]:
    """Matmul FLOPs of one training step (forward, loss, backward) of the project's model, per sample."""
    from torch.utils.flop_counter import FlopCounterMode

    model = VAE(model_cfg, generator=torch.Generator().manual_seed(0))
    x = torch.rand(BATCH, 1, 28, 28)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = elbo_terms(model, x, model(x, torch.Generator().manual_seed(0))).total.mean()
        loss.backward()
    by_op = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops() / BATCH, by_op


def matmul_gflops(n: int = MATMUL_N, reps: int = 5) -> float:
    """Median GFLOP/s of an n x n @ n x n fp32 matmul (2 n^3 FLOPs each)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


class StepMatmuls:
    """The 14 matmuls of one training step of the 784-400-20-400-784 model (batch 128), alone, back to back.

    Forward: the five layers' addmm; backward: each weight's gradient and each hidden input's gradient
    (none for the images). Their GFLOP/s is the ceiling for any eager step that runs these matmuls one
    after another: what the Trainer loses beyond it is its non-matmul work.
    """

    def __init__(self, with_adam: bool = False):
        g = torch.Generator().manual_seed(0)

        def r(*shape):
            return torch.rand(*shape, generator=g)

        b, p, h, d = BATCH, 784, HIDDEN, LATENT
        self.x, self.h1, self.z, self.h3 = r(b, p), r(b, h), r(b, d), r(b, h)
        self.g4, self.g3, self.gmu, self.glv, self.g1 = r(b, p), r(b, h), r(b, d), r(b, d), r(b, h)
        self.w1, self.wmu, self.wlv, self.w3, self.w4 = r(h, p), r(d, h), r(d, h), r(h, d), r(p, h)
        self.b1, self.bmu, self.blv, self.b3, self.b4 = r(h), r(d), r(d), r(h), r(p)
        self.flops = 2 * b * (3 * (p * h + 2 * h * d + d * h + h * p) - p * h)  # fwd, weight grads, input grads
        # with_adam: each step then also updates these weights as the Trainer does (torch's fused Adam), the
        # weight gradients being the matmuls' results, as in a step.
        self.adam = None
        if with_adam:
            self.params = [self.w1, self.b1, self.wmu, self.bmu, self.wlv, self.blv, self.w3, self.b3, self.w4, self.b4]
            self.bias_grads = [r(*t.shape).mul_(1e-3) for t in self.params[1::2]]
            self.adam = torch.optim.Adam(self.params, lr=1e-3, fused=True)

    def step(self) -> None:
        torch.addmm(self.b1, self.x, self.w1.t())
        torch.addmm(self.bmu, self.h1, self.wmu.t())
        torch.addmm(self.blv, self.h1, self.wlv.t())
        torch.addmm(self.b3, self.z, self.w3.t())
        torch.addmm(self.b4, self.h3, self.w4.t())
        g_w4 = self.g4.t().mm(self.h3)
        self.g4.mm(self.w4)
        g_w3 = self.g3.t().mm(self.z)
        self.g3.mm(self.w3)
        g_wmu = self.gmu.t().mm(self.h1)
        g_wlv = self.glv.t().mm(self.h1)
        self.gmu.mm(self.wmu).addmm_(self.glv, self.wlv)
        g_w1 = self.g1.t().mm(self.x)
        if self.adam is not None:
            b1, bmu, blv, b3, b4 = self.bias_grads
            for param, grad in zip(self.params, [g_w1, b1, g_wmu, bmu, g_wlv, blv, g_w3, b3, g_w4, b4]):
                param.grad = grad
            self.adam.step()

    def gflops(self, steps: int = 50) -> float:
        self.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return self.flops * steps / (time.perf_counter() - t0) / 1e9


# --- report ---------------------------------------------------------------------------------------


class OtherLoad:
    """Share of the machine's CPU time that other processes used between start() and stop().

    From /proc/stat (all CPUs' busy time) minus this process's own CPU time and that of its
    finished children (DataLoader workers); None where /proc is not available.
    """

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        total = sum(fields[:8])
        t = os.times()
        return (total - idle) / hz, total / hz, t.user + t.system + t.children_user + t.children_system

    def __init__(self):
        self.shares: list[float] = []
        self._start = None

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return None
        busy, total, own = (e - s for e, s in zip(end, self._start))
        share = max(0.0, busy - own) / total
        self.shares.append(share)
        return share


def fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    default_data = os.environ.get(DATA_DIR_ENV) or str(ROOT.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=default_data, help="folder holding MNIST/raw (default $VAE_DATA_DIR, else ../shared/data)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each measurement (medians are reported)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per timed run; both loops then use the first steps*128 images "
                             "(default: one whole epoch over every image)")
    parser.add_argument("--ref-workers", default="0",
                        help="DataLoader num_workers values for the reference, comma separated, e.g. 0,1; the "
                             "first is the one the target is measured against (default 0, the tutorial's on a CPU)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file to update ('' to skip)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--repeats and --steps must be at least 1")
    workers = [int(w) for w in args.ref_workers.split(",") if w.strip()]
    if not workers:
        parser.error("--ref-workers needs at least one value")

    data_dir = Path(args.data_dir).expanduser().resolve()
    limit = None if args.steps is None else args.steps * BATCH
    threads = torch.get_num_threads()
    load_start = load_average()
    print(f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs ({cpu_model()}), "
          f"load {load_start}", flush=True)

    train = load_dataset("mnist", "train", data_dir)
    model_cfg, train_cfg = project_configs(data_dir, limit)
    trainer = Trainer(model_cfg, train_cfg, train)
    autograd = Trainer(model_cfg, train_cfg, train, fast_step=False)  # the general path, for the fast step's gain
    assert trainer.fast_step is not None and autograd.fast_step is None
    refs = {w: Reference(data_dir, w, limit) for w in workers}
    n_images = len(trainer.x_train)
    assert all(ref.n == n_images for ref in refs.values()), "the two loops must see the same images"
    steps_per_run = trainer.steps_per_epoch
    print(f"data: MNIST train, {n_images:,} images ({len(train):,} on disk), {steps_per_run} steps of {BATCH} per run",
          flush=True)

    fps, by_op = flops_per_sample(model_cfg)
    print(f"FLOPs per sample of one training step (matmuls): {fps / 1e6:.3f} M  {by_op}", flush=True)

    # Warm-up pass of each (excluded): first-touch allocations, MKL/oneDNN init, worker start-up paths.
    project_epoch(trainer)
    project_epoch(autograd)
    for ref in refs.values():
        ref.epoch()
    matmul_gflops(reps=2)

    step_mm = StepMatmuls()
    assert abs(step_mm.flops - fps * BATCH) < 1, "the step's matmuls must be the ones FlopCounterMode counted"
    step_mm.gflops()
    step_adam = StepMatmuls(with_adam=True)
    step_adam.gflops()
    proj_sps, auto_sps, ref_sps, mm, ceiling, ceiling_adam = [], [], {w: [] for w in workers}, [], [], []
    others = OtherLoad()
    for r in range(args.repeats):
        others.start()
        n, s = project_epoch(trainer)
        proj_sps.append(n / s)
        n, s = project_epoch(autograd)
        auto_sps.append(n / s)
        for w, ref in refs.items():
            n_ref, s_ref = ref.epoch()
            ref_sps[w].append(n_ref / s_ref)
        mm.append(matmul_gflops())
        ceiling.append(step_mm.gflops())
        ceiling_adam.append(step_adam.gflops())
        share = others.stop()
        print(f"run {r + 1}/{args.repeats}: project {proj_sps[-1]:,.0f}/s (through autograd {auto_sps[-1]:,.0f}/s), "
              + ", ".join(f"reference(workers={w}) {ref_sps[w][-1]:,.0f}/s" for w in workers)
              + f", matmul {mm[-1]:.1f} GFLOP/s, step's matmuls alone {ceiling[-1]:.1f}, with Adam {ceiling_adam[-1]:.1f}; "
              + "other processes used "
              + ("n/a" if share is None else f"{100 * share:.0f}%") + " of the CPUs", flush=True)

    med_proj = statistics.median(proj_sps)
    fast_gain = med_proj / statistics.median(auto_sps)
    round_gains = [p / a for p, a in zip(proj_sps, auto_sps)]
    fast_ok = min(fast_gain, statistics.median(round_gains)) >= FAST_STEP_TARGET
    fast_text = (f"the MLP's fast step pays **{fast_gain:.2f}x** the same Trainer through autograd (median of the "
                 f"per-round ratios {statistics.median(round_gains):.2f}; keep it while >= {FAST_STEP_TARGET:.2f}x: "
                 f"**{'PASS' if fast_ok else 'FAIL'}**)")
    other_text = (f"{100 * statistics.median(others.shares):.0f}% (median; max {100 * max(others.shares):.0f}%)"
                  if others.shares else "an unknown share")
    print(f"other processes used {other_text} of the CPU time during the timed rounds")
    med_ref = {w: statistics.median(v) for w, v in ref_sps.items()}
    med_mm = statistics.median(mm)
    med_ceiling = statistics.median(ceiling)
    med_ceiling_adam = statistics.median(ceiling_adam)
    base = workers[0]
    speedup = med_proj / med_ref[base]
    gflops = fps * med_proj / 1e9
    frac = gflops / med_mm
    # The same ratios within each round (measurements seconds apart), as a check on drift between rounds;
    # a target counts as met only when both forms meet it.
    round_speedups = [p / r for p, r in zip(proj_sps, ref_sps[base])]
    round_fracs = [fps * p / 1e9 / m for p, m in zip(proj_sps, mm)]
    speed_ok = min(speedup, statistics.median(round_speedups)) >= SPEED_TARGET
    flops_ok = min(frac, statistics.median(round_fracs)) >= FLOPS_TARGET
    noisy = not others.shares or statistics.median(others.shares) > NOISY_SHARE
    if noisy:
        print(f"warning: other processes used {other_text} of the CPU time; these numbers are not reliable")
    per_round = (f"median of the per-round ratios: {statistics.median(round_speedups):.2f}x "
                 f"({', '.join(f'{v:.2f}' for v in round_speedups)}) and {100 * statistics.median(round_fracs):.1f}% "
                 f"({', '.join(f'{100 * v:.0f}' for v in round_fracs)})")

    rows = [("project Trainer.train_epoch", f"{fmt(med_proj)} samples/s", f"{fmt(min(proj_sps))} - {fmt(max(proj_sps))}"),
            ("the same, fast_step=False (autograd)", f"{fmt(statistics.median(auto_sps))} samples/s",
             f"{fmt(min(auto_sps))} - {fmt(max(auto_sps))}")]
    for w in workers:
        rows.append((f"reference loop, DataLoader num_workers={w}", f"{fmt(med_ref[w])} samples/s",
                     f"{fmt(min(ref_sps[w]))} - {fmt(max(ref_sps[w]))}"))
    rows += [
        (f"fp32 matmul {MATMUL_N}x{MATMUL_N} @ {MATMUL_N}x{MATMUL_N}", f"{med_mm:.1f} GFLOP/s", f"{min(mm):.1f} - {max(mm):.1f}"),
        ("FLOPs per sample (one training step, matmuls)", f"{fps / 1e6:.3f} MFLOP", ""),
        ("project achieved GFLOP/s (FLOPs/sample x samples/s)", f"{gflops:.1f} GFLOP/s", ""),
        ("the step's 14 matmuls alone, back to back (no other work)", f"{med_ceiling:.1f} GFLOP/s",
         f"{min(ceiling):.1f} - {max(ceiling):.1f}"),
        ("the same matmuls and the Trainer's Adam update, back to back (no other work)", f"{med_ceiling_adam:.1f} GFLOP/s",
         f"{min(ceiling_adam):.1f} - {max(ceiling_adam):.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, spread in rows:
        print(f"{name:<{width}}  {value:>20}  {('range ' + spread) if spread else ''}")
    print(f"\nspeed-up over the reference (num_workers={base}): {speedup:.2f}x  "
          f"(target >= {SPEED_TARGET}x: {'PASS' if speed_ok else 'FAIL'})")
    for w in workers[1:]:
        print(f"speed-up over the reference (num_workers={w}): {med_proj / med_ref[w]:.2f}x")
    print(f"achieved / matmul GFLOP/s: {100 * frac:.1f}%  (target >= {100 * FLOPS_TARGET:.0f}%: "
          f"{'PASS' if flops_ok else 'FAIL'})")
    print(per_round)
    print(fast_text.replace("**", ""))
    round_adam = [c / m for c, m in zip(ceiling_adam, mm)]
    ceiling_text = (f"the step's matmuls alone reach {med_ceiling:.1f} GFLOP/s, {100 * med_ceiling / med_mm:.0f}% of the "
                    f"large matmul, {100 * med_ceiling_adam / med_mm:.0f}% with the Adam update after them (per round "
                    f"{', '.join(f'{100 * v:.0f}' for v in round_adam)}; median {100 * statistics.median(round_adam):.0f}%); "
                    "the Trainer "
                    f"reaches {100 * gflops / med_ceiling:.0f}% of the first ceiling and {100 * gflops / med_ceiling_adam:.0f}% "
                    "of the second")
    print(ceiling_text)

    if args.out:
        command = ".venv/bin/python bench/train_throughput.py"
        extra = []
        if data_dir != Path(default_data).expanduser().resolve():
            extra.append(f"--data-dir {data_dir}")
        if args.repeats != 5:
            extra.append(f"--repeats {args.repeats}")
        if args.steps is not None:
            extra.append(f"--steps {args.steps}")
        if args.ref_workers != "0":
            extra.append(f"--ref-workers {args.ref_workers}")
        command = " ".join([command, *extra])
        table = ["| measurement | median | range over runs |", "|---|---:|---:|"]
        table += [f"| {name} | {value} | {spread} |" for name, value, spread in rows]
        lines = [
            SECTION,
            "",
            f"Written by `bench/train_throughput.py` on {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}.",
            "",
            f"- Machine: {os.cpu_count()} CPUs, {cpu_model()}; torch {torch.__version__}, "
            f"{threads} intra-op threads (both loops and the matmul); load average {load_start} at the start, "
            f"{load_average()} at the end; other processes used {other_text} of the CPU time during the timed rounds "
            "(they share these cores: the project's 2-thread matmuls suffer most when they do).",
            f"- Data: MNIST, first 24,345 training images ({n_images:,} used per run, "
            f"{steps_per_run} steps of batch {BATCH}).",
            "- Model: 784-400-20-400-784 MLP VAE, ReLU, Bernoulli likelihood (BCE), Adam lr 1e-3, batch 128, fp32, CPU.",
            "- Reference: the pytorch/examples `vae/main.py` loop: `torchvision.datasets.MNIST` + `transforms.ToTensor()` + "
            "`DataLoader(batch_size=128, shuffle=True)`, `F.binary_cross_entropy(..., reduction='sum')` + KL, "
            "`loss.item()` each step.",
            "- Project: `vae.train.Trainer.train_epoch()`, the loop the CLI and the app run (for this MLP + Bernoulli "
            "model on a CPU: the backward written out by hand, vae/mlp_step.py, on vae/loss.py's closed-form gradients; torch's fused Adam; batches gathered from a float tensor made once when "
            "the Trainer is built, outside the timing; the reference converts each image with `ToTensor` every epoch, "
            "as the tutorial does).",
            f"- Method: one warm-up pass of each, then {args.repeats} rounds of (project epoch, the same through autograd, reference epoch(s), "
            f"large matmul, the step's matmuls alone, the same with the Adam update) alternating; medians. FLOPs are matmul FLOPs (forward + backward, no gradient for the input "
            "images) of one autograd training step of the project's model, counted by "
            "`torch.utils.flop_counter.FlopCounterMode`; the Trainer's step runs the same matmuls. Elementwise work, "
            "the loss and the optimizer are not counted.",
            "- Command:",
            "",
            "  ```",
            f"  {command}",
            "  ```",
            "",
            *table,
            "",
            f"- Speed-up over the reference (num_workers={base}): **{speedup:.2f}x** "
            f"(target >= {SPEED_TARGET}x: **{'PASS' if speed_ok else 'FAIL'}**)"
            + "".join(f"; over num_workers={w}: {med_proj / med_ref[w]:.2f}x" for w in workers[1:]) + ".",
            f"- Fast step: {fast_text}.",
            f"- Achieved GFLOP/s as a share of the large matmul's: **{100 * frac:.1f}%** "
            f"(target >= {100 * FLOPS_TARGET:.0f}%: **{'PASS' if flops_ok else 'FAIL'}**).",
            f"- Ceiling: {ceiling_text} (the rest of its time goes to the loss, the ReLU masks, the bias sums, the "
            "noise draw and the Python dispatch of the ~60 ops of a step).",
            f"- Both ratios above are ratios of the medians; the {per_round}. A target counts as met only when "
            "both forms meet it.",
            *([f"- **Warning: other processes used {other_text} of the CPU time during the timed rounds; "
               "these numbers are not reliable. Rerun on an idle machine.**"] if noisy else []),
            "",
        ]
        out = Path(args.out)
        replace_section("\n".join(lines), out)
        print(f"\nwrote the '{SECTION[3:]}' section of {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
