#!/usr/bin/env python3
"""The llama that include/jielong/train/model.hpp trains, written plainly in
PyTorch (float64), as the reference for tests/test_train_model.cpp.

usage: train_reference.py DIR
DIR/config.json names the hyper-parameters, the tensors of the parameter
block in order (name, rows, cols), the batch shape and the optimizer
settings; DIR/params.bin (float32, the block), tokens.bin, targets.bin
(int32 [B][T]) and mask.bin (uint8 [B][T]) hold the data. Writes
DIR/ref_grads.bin (float64, gradient of the first loss, block layout),
DIR/ref_params.bin (float64, the block after the AdamW steps) and
DIR/ref.json ({"losses": [loss before each step]}).
"""
import json
import math
import os
import sys

import numpy as np
import torch


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin, neox):  # x [B, T, H, hd]; cos, sin [T, hd/2]
    hd = x.shape[-1]
    if neox:
        a, b = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


def forward(P, cfg, tokens, targets, mask):
    B, T = tokens.shape
    H, KV, hd = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    eps, neox = cfg["rms_norm_eps"], cfg["arch"] == "qwen2"
    inv_freq = 1.0 / (cfg["rope_freq_base"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = P["token_embd.weight"][tokens]
    for l in range(cfg["n_layers"]):
        p = lambda n: P.get(f"blk.{l}.{n}")
        xn = rmsnorm(x, p("attn_norm.weight"), eps)
        q, k, v = xn @ p("attn_q.weight").T, xn @ p("attn_k.weight").T, xn @ p("attn_v.weight").T
        if p("attn_q.bias") is not None:
            q, k, v = q + p("attn_q.bias"), k + p("attn_k.bias"), v + p("attn_v.bias")
        q = rope(q.view(B, T, H, hd), cos, sin, neox).transpose(1, 2)
        k = rope(k.view(B, T, KV, hd), cos, sin, neox).transpose(1, 2).repeat_interleave(H // KV, dim=1)
        v = v.view(B, T, KV, hd).transpose(1, 2).repeat_interleave(H // KV, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        a = torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + o @ p("attn_output.weight").T
        xn = rmsnorm(x, p("ffn_norm.weight"), eps)
        h = torch.nn.functional.silu(xn @ p("ffn_gate.weight").T) * (xn @ p("ffn_up.weight").T)
        x = x + h @ p("ffn_down.weight").T
    x = rmsnorm(x, P["output_norm.weight"], eps)
    logits = x @ P.get("output.weight", P["token_embd.weight"]).T
    losses = torch.nn.functional.cross_entropy(logits.view(B * T, -1), targets.view(-1), reduction="none")
    m = mask.view(-1).to(torch.float64)
    return (losses * m).sum() / m.sum()


def lr_at(o, step):  # linear warmup, then cosine to min_lr_ratio·lr
    if step < o["warmup_steps"]:
        return o["lr"] * (step + 1) / o["warmup_steps"]
    if o["total_steps"] <= o["warmup_steps"]:
        return o["lr"]
    t = min(1.0, (step - o["warmup_steps"]) / (o["total_steps"] - o["warmup_steps"]))
    return o["lr"] * (o["min_lr_ratio"] + (1 - o["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * t)))


def main():
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "config.json")))
    B, T = cfg["batch"], cfg["seq_len"]
    block = np.fromfile(os.path.join(d, "params.bin"), dtype=np.float32).astype(np.float64)
    tokens = torch.from_numpy(np.fromfile(os.path.join(d, "tokens.bin"), dtype=np.int32).astype(np.int64)).view(B, T)
    targets = torch.from_numpy(np.fromfile(os.path.join(d, "targets.bin"), dtype=np.int32).astype(np.int64)).view(B, T)
    mask = torch.from_numpy(np.fromfile(os.path.join(d, "mask.bin"), dtype=np.uint8)).view(B, T)
    P, order, off = {}, [], 0
    for t in cfg["tensors"]:
        n = t["rows"] * t["cols"]
        shape = (t["cols"],) if t["rows"] == 1 else (t["rows"], t["cols"])
        P[t["name"]] = torch.tensor(block[off : off + n].reshape(shape), requires_grad=True)
        order.append(t)
        off += n
    o = cfg["adamw"]
    decay = [P[t["name"]] for t in order if t["decay"]]
    no_decay = [P[t["name"]] for t in order if not t["decay"]]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    losses, first_grads = [], None
    for step in range(o["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(o, step)
        opt.zero_grad()
        loss = forward(P, cfg, tokens, targets, mask)
        loss.backward()
        losses.append(loss.item())
        if first_grads is None:
            first_grads = np.concatenate([P[t["name"]].grad.detach().numpy().reshape(-1) for t in order])
        if o["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_([P[t["name"]] for t in order], o["grad_clip"])
        opt.step()
    first_grads.astype(np.float64).tofile(os.path.join(d, "ref_grads.bin"))
    np.concatenate([P[t["name"]].detach().numpy().reshape(-1) for t in order]).astype(np.float64).tofile(
        os.path.join(d, "ref_params.bin"))
    json.dump({"losses": losses}, open(os.path.join(d, "ref.json"), "w"))


if __name__ == "__main__":
    main()
