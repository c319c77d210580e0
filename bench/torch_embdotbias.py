#!/usr/bin/env python3
"""Times a fastai-style EmbeddingDotBias in plain PyTorch, for `npm run bench:train`.

Model (fastai collab's EmbeddingDotBias, written from its published equations):
    score = sigmoid(u_w[u] . i_w[i] + u_b[u] + i_b[i]) * (hi - lo) + lo,   y_range (0, 5.5)
Training as fastai's fit_one_cycle: Adam (beta1 cycled 0.95 -> 0.85 -> 0.95, beta2 0.99, eps 1e-5)
with decoupled weight decay (AdamW), one-cycle learning rate (max 5e-3, div 25, final div 1e5,
25 % warm-up, cosine), MSE loss, batch 64, random 20 % validation.

Input: a tab-separated file of user, item, rating (ids may be any strings). Prints one JSON object.
"""
import argparse
import json
import sys
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--factors", type=int, default=50)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--valid-pct", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    users, items, ratings = [], [], []
    uidx, iidx = {}, {}
    with open(a.data, encoding="utf8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 3:
                continue
            users.append(uidx.setdefault(p[0], len(uidx)))
            items.append(iidx.setdefault(p[1], len(iidx)))
            ratings.append(float(p[2]))
    u = torch.tensor(users, dtype=torch.long)
    i = torch.tensor(items, dtype=torch.long)
    r = torch.tensor(ratings, dtype=torch.float32)
    n = len(ratings)
    perm = torch.randperm(n)
    n_valid = int(n * a.valid_pct)
    valid, train = perm[:n_valid], perm[n_valid:]

    lo, hi = 0.0, 5.5

    class EmbeddingDotBias(torch.nn.Module):
        def __init__(self, n_users: int, n_items: int, k: int) -> None:
            super().__init__()
            self.u_w = torch.nn.Embedding(n_users, k)
            self.i_w = torch.nn.Embedding(n_items, k)
            self.u_b = torch.nn.Embedding(n_users, 1)
            self.i_b = torch.nn.Embedding(n_items, 1)
            for e in (self.u_w, self.i_w, self.u_b, self.i_b):
                torch.nn.init.trunc_normal_(e.weight, std=0.01, a=-0.02, b=0.02)

        def forward(self, uu: torch.Tensor, ii: torch.Tensor) -> torch.Tensor:
            s = (self.u_w(uu) * self.i_w(ii)).sum(1) + self.u_b(uu).squeeze(1) + self.i_b(ii).squeeze(1)
            return torch.sigmoid(s) * (hi - lo) + lo

    model = EmbeddingDotBias(len(uidx), len(iidx), a.factors)
    steps_per_epoch = (len(train) + a.bs - 1) // a.bs
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.95, 0.99), eps=1e-5, weight_decay=a.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=a.lr, total_steps=steps_per_epoch * a.epochs, pct_start=0.25, div_factor=25.0,
        final_div_factor=1e5, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
    )
    loss_fn = torch.nn.MSELoss()
    epoch_seconds = []
    valid_mse = []
    for _ in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        order = train[torch.randperm(len(train))]
        for s in range(0, len(order), a.bs):
            b = order[s:s + a.bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(u[b], i[b]), r[b])
            loss.backward()
            opt.step()
            sched.step()
        epoch_seconds.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            valid_mse.append(float(loss_fn(model(u[valid], i[valid]), r[valid])))
    json.dump({
        "ratings": n, "train": len(train), "users": len(uidx), "items": len(iidx), "factors": a.factors,
        "batch": a.bs, "threads": a.threads, "torch": torch.__version__,
        "seconds_per_epoch": epoch_seconds, "valid_mse": valid_mse,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
