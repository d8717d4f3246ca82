"""The MnasNet controller: an LSTM policy emitting one decision per step, trained with PPO.

MnasNet reused NASNet's controller: a one-layer LSTM (100 hidden units) that reads the
previous decision (as an embedding) and emits the next through a per-decision softmax; the
whole sample is scored by the reward; PPO updates the policy with a moving-average baseline
(decay 0.95). Here it is plain numpy with hand-written backpropagation through time
(checked against finite differences in the tests), so the controller needs no TensorFlow.

Each token is an action and the episode's only reward comes at its end (no discount), so
every token's advantage is ``R - b``; PPO clips each token's probability ratio at
``1 +- clip`` and adds an entropy bonus.

Parallel evaluation: ``ask`` remembers each trial's log-probabilities under the policy that
sampled it, by trial id, and ``tell`` uses them as PPO's "old" policy, so several trials may
be outstanding while updates happen (the ratio stays against the behaviour policy). Told one
at a time right after its ask, the controller behaves exactly as before.

Checkpoints: the parameters and Adam's moments (about 3 MB of JSON at the paper's 100
hidden units) change only at an update, every ``batch_size`` tells, so
:attr:`PPOController.checkpoint_due` is true only right after one; the search loop writes
``controller.json`` then (and at the end), and a resume replays the few results since from
the journal.
"""

from __future__ import annotations

import numpy as np

from mnas_keras.search.controllers.base import (
    Adam, Controller, MovingAverageBaseline, decode_array, encode_array, softmax,
)
from mnas_keras.search.errors import SearchConfigError


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class PPOController(Controller):
    """LSTM policy + PPO (the MnasNet paper's controller).

    Args:
        hidden_size: LSTM units (100 in MnasNet/NASNet; NNI uses 64).
        embedding_size: size of the previous-decision embedding (default: hidden_size).
        lr: Adam learning rate.
        batch_size: samples per PPO update (NNI: 20).
        ppo_epochs: gradient steps per update over the batch.
        clip: PPO ratio clip.
        entropy_weight: weight of the entropy bonus.
        baseline_decay: moving-average baseline decay (0.95).
        init_scale: weights start uniform in ``[-init_scale, init_scale]``.

    Example:
        >>> c = PPOController([3, 2, 2], seed=0, hidden_size=8, batch_size=4)
        >>> for _ in range(8):
        ...     t = c.ask(); c.tell(t.id, float(t.decisions[0] == 2))
        >>> len(c.probabilities()), c.num_told
        (3, 8)
    """

    name = "ppo"

    def __init__(self, num_choices, seed=0, names=None, hidden_size: int = 100,
                 embedding_size: int | None = None, lr: float = 0.005, batch_size: int = 10,
                 ppo_epochs: int = 4, clip: float = 0.2, entropy_weight: float = 1e-3,
                 baseline_decay: float = 0.95, init_scale: float = 0.1):
        super().__init__(num_choices, seed, names)
        if hidden_size < 1 or batch_size < 1 or ppo_epochs < 1:
            raise SearchConfigError(
                f"hidden_size, batch_size and ppo_epochs must be >= 1; received {hidden_size}, "
                f"{batch_size}, {ppo_epochs}"
            )
        if not 0 < clip < 1:
            raise SearchConfigError(f"clip must be in (0, 1); received {clip}")
        self.hidden_size = int(hidden_size)
        self.embedding_size = int(embedding_size or hidden_size)
        self.batch_size = int(batch_size)
        self.ppo_epochs = int(ppo_epochs)
        self.clip = float(clip)
        self.entropy_weight = float(entropy_weight)
        self.init_scale = float(init_scale)
        H, E, n = self.hidden_size, self.embedding_size, self.num_choices
        init = np.random.Generator(np.random.PCG64([self.seed, 1]))

        def uniform(*shape):
            return init.uniform(-self.init_scale, self.init_scale, size=shape)

        bias = np.zeros(4 * H)
        bias[H:2 * H] = 1.0  # forget gate
        self.params = (
            [uniform(E)]
            + [uniform(k, E) for k in n[:-1]]
            + [uniform(E + H, 4 * H), bias]
            + [uniform(H, k) for k in n]
            + [np.zeros(k) for k in n]
        )
        self.optimizer = Adam([p.shape for p in self.params], lr=lr)
        self.baseline = MovingAverageBaseline(baseline_decay)
        self.buffer: list[tuple[list[int], float, list[float]]] = []
        #: ``{trial id: log-probabilities under the policy that sampled it}`` of the
        #: outstanding trials (several when evaluations run in parallel).
        self.pending: dict[int, list[float]] = {}
        self.last_update: dict[str, float] = {}

    # ------------------------------------------------------------------ params
    @property
    def T(self) -> int:
        return len(self.num_choices)

    def _unpack(self, params=None):
        params = self.params if params is None else params
        T = self.T
        start = params[0]
        emb = params[1:T]
        W, b = params[T], params[T + 1]
        Wo = params[T + 2: 2 * T + 2]
        bo = params[2 * T + 2: 3 * T + 2]
        return start, emb, W, b, Wo, bo

    def config(self):
        return {"hidden_size": self.hidden_size, "embedding_size": self.embedding_size,
                "lr": self.optimizer.lr, "batch_size": self.batch_size, "ppo_epochs": self.ppo_epochs,
                "clip": self.clip, "entropy_weight": self.entropy_weight,
                "baseline_decay": self.baseline.decay, "init_scale": self.init_scale}

    # ----------------------------------------------------------------- forward
    def _step(self, x, h, c, W, b):
        H = self.hidden_size
        xh = np.concatenate([x, h], axis=1)
        z = xh @ W + b
        i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 2 * H:3 * H])
        g = np.tanh(z[:, 3 * H:])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        h_new = o * tc
        return h_new, c_new, (xh, i, f, o, g, c, tc)

    def _rollout(self, mode: str):
        """Runs the policy for one sample: ``mode`` is "sample" or "greedy".

        Returns the decisions and the distribution at each step."""
        start, emb, W, b, Wo, bo = self._unpack()
        H = self.hidden_size
        h, c = np.zeros((1, H)), np.zeros((1, H))
        x = start[None, :]
        decisions, probs = [], []
        for t in range(self.T):
            h, c, _ = self._step(x, h, c, W, b)
            p = softmax(h[0] @ Wo[t] + bo[t])
            a = self._categorical(p) if mode == "sample" else int(np.argmax(p))
            decisions.append(a)
            probs.append(p)
            if t + 1 < self.T:
                x = emb[t][a][None, :]
        return decisions, probs

    def _forward(self, actions: np.ndarray, params=None):
        """Teacher-forced forward over a batch of samples ``actions`` (B, T)."""
        start, emb, W, b, Wo, bo = self._unpack(params)
        B, H = actions.shape[0], self.hidden_size
        h, c = np.zeros((B, H)), np.zeros((B, H))
        x = np.repeat(start[None, :], B, axis=0)
        caches, hs, probs = [], [], []
        for t in range(self.T):
            h, c, cache = self._step(x, h, c, W, b)
            caches.append(cache)
            hs.append(h)
            probs.append(softmax(h @ Wo[t] + bo[t]))
            if t + 1 < self.T:
                x = emb[t][actions[:, t]]
        return caches, hs, probs

    def _log_probs(self, actions: np.ndarray, probs) -> np.ndarray:
        B = actions.shape[0]
        return np.stack([np.log(p[np.arange(B), actions[:, t]] + 1e-300) for t, p in enumerate(probs)], axis=1)

    # --------------------------------------------------------------- objective
    def objective_and_grads(self, actions, advantages, old_log_probs, params=None):
        """PPO's clipped surrogate plus entropy bonus (to maximize) and its gradients.

        Args:
            actions: int array (B, T); advantages: (B,); old_log_probs: (B, T).
        Returns:
            (objective, list of gradients matching ``params``)
        """
        params = self.params if params is None else params
        start, emb, W, b, Wo, bo = self._unpack(params)
        actions = np.asarray(actions, dtype=np.int64)
        adv = np.asarray(advantages, dtype=np.float64)[:, None]
        B, H, E = actions.shape[0], self.hidden_size, self.embedding_size
        caches, hs, probs = self._forward(actions, params)
        logp = self._log_probs(actions, probs)
        ratio = np.exp(logp - np.asarray(old_log_probs))
        clipped = np.clip(ratio, 1 - self.clip, 1 + self.clip)
        surrogate = np.minimum(ratio * adv, clipped * adv)
        # d surrogate / d logp: ratio * A where the unclipped term is the minimum.
        active = (ratio * adv) <= (clipped * adv)
        d_logp = np.where(active, ratio * adv, 0.0) / B
        entropies = [-np.sum(p * np.log(p + 1e-300), axis=1) for p in probs]
        objective = float(np.sum(surrogate) / B + self.entropy_weight * sum(np.sum(e) for e in entropies) / B)

        g_start = np.zeros_like(start)
        g_emb = [np.zeros_like(e) for e in emb]
        gW, gb = np.zeros_like(W), np.zeros_like(b)
        gWo = [np.zeros_like(w) for w in Wo]
        gbo = [np.zeros_like(v) for v in bo]
        dh_next, dc_next = np.zeros((B, H)), np.zeros((B, H))
        rows = np.arange(B)
        for t in reversed(range(self.T)):
            p = probs[t]
            d_logits = -p * d_logp[:, t:t + 1]
            d_logits[rows, actions[:, t]] += d_logp[:, t]
            log_p = np.log(p + 1e-300)
            d_logits += (self.entropy_weight / B) * (-p * (log_p + entropies[t][:, None]))
            gWo[t] += hs[t].T @ d_logits
            gbo[t] += d_logits.sum(axis=0)
            dh = d_logits @ Wo[t].T + dh_next
            xh, i, f, o, g, c_prev, tc = caches[t]
            do = dh * tc
            dc = dh * o * (1 - tc * tc) + dc_next
            di, dg, df = dc * g, dc * i, dc * c_prev
            dc_next = dc * f
            dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)], axis=1)
            gW += xh.T @ dz
            gb += dz.sum(axis=0)
            dxh = dz @ W.T
            dx, dh_next = dxh[:, :E], dxh[:, E:]
            if t == 0:
                g_start += dx.sum(axis=0)
            else:
                np.add.at(g_emb[t - 1], actions[:, t - 1], dx)
        grads = [g_start] + g_emb + [gW, gb] + gWo + gbo
        return objective, grads

    # -------------------------------------------------------------- interface
    def _propose(self) -> list[int]:
        return self._rollout("sample")[0]

    def _asked(self, trial_id, decisions):
        self.pending[trial_id] = self._sample_log_probs(decisions)

    def _sample_log_probs(self, decisions) -> list[float]:
        actions = np.asarray([decisions])
        _, _, probs = self._forward(actions)
        return self._log_probs(actions, probs)[0].tolist()

    def _tell(self, trial_id, decisions, reward):
        # PPO's ratio is against the policy that sampled the trial: with parallel
        # evaluations an update may have happened between its ask and this tell.
        old = self.pending.pop(trial_id, None) if trial_id is not None else None
        if old is None:  # a sample that did not come from ask(): the current policy
            old = self._sample_log_probs(decisions)
        self.buffer.append((decisions, self.baseline.advantage(reward), old))
        if len(self.buffer) >= self.batch_size:
            self._update()

    @property
    def checkpoint_due(self) -> bool:
        """True right after a policy update (no tell buffered): see the module docs."""
        return not self.buffer

    def _update(self):
        actions = np.asarray([d for d, _, _ in self.buffer], dtype=np.int64)
        adv = np.asarray([a for _, a, _ in self.buffer])
        old = np.asarray([o for _, _, o in self.buffer])
        objective = 0.0
        for _ in range(self.ppo_epochs):
            objective, grads = self.objective_and_grads(actions, adv, old)
            self.optimizer.step(self.params, grads)
        self.last_update = {"objective": objective, "mean_advantage": float(adv.mean())}
        self.buffer = []

    def probabilities(self):
        """The policy's distribution at each step along its most likely sample."""
        return [p.tolist() for p in self._rollout("greedy")[1]]

    def stats(self):
        out = super().stats()
        if self.baseline.value is not None:
            out["baseline"] = self.baseline.value
        out.update(self.last_update)
        return out

    # ------------------------------------------------------------------- state
    def _state(self):
        return {"params": [encode_array(p) for p in self.params], "adam": self.optimizer.state(),
                "baseline": self.baseline.value,
                "buffer": [[d, a, o] for d, a, o in self.buffer], "last_update": self.last_update,
                "pending": [[i, o] for i, o in self.pending.items()]}

    def _load(self, state):
        if len(state["params"]) != len(self.params):
            raise SearchConfigError("PPO controller state has a different number of parameter arrays")
        self.params = [decode_array(a).reshape(p.shape) for a, p in zip(state["params"], self.params)]
        self.optimizer.load(state["adam"])
        self.baseline.value = None if state["baseline"] is None else float(state["baseline"])
        self.buffer = [(list(map(int, d)), float(a), [float(x) for x in o]) for d, a, o in state["buffer"]]
        self.last_update = dict(state.get("last_update", {}))
        pending = state.get("pending", [])
        if all(isinstance(i, int) for i, _ in pending):
            self.pending = {int(i): [float(x) for x in o] for i, o in pending}
        else:  # saved before trials had ids: [decisions, log-probabilities] in ask order
            self.pending = {}
            old = [(list(map(int, d)), [float(x) for x in o]) for d, o in pending]
            for trial_id, decisions in self.outstanding.items():
                if old and old[0][0] == decisions:
                    self.pending[trial_id] = old.pop(0)[1]
