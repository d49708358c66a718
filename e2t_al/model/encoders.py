"""Encoders φ: material → embedding in R^d (d = ``embedding_dim``)."""

from __future__ import annotations

import torch
from torch import nn

from e2t_al.config import EncoderConfig
from e2t_al.model.inputs import CrystalGraphInputs, DescriptorInputs, GraphBatch, MaterialInputs


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with SiLU (and dropout) between them; no activation after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.SiLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
    return nn.Sequential(*layers)


class DescriptorEncoder(nn.Module):
    """φ(x) = MLP((x − μ) / σ) for a descriptor vector x ∈ R^p, with μ, σ the training set's column means and
    standard deviations (stored as buffers, so they are saved with the weights); missing values map to μ."""

    def __init__(self, n_descriptors: int, config: EncoderConfig):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(n_descriptors))
        self.register_buffer("input_std", torch.ones(n_descriptors))
        self.net = mlp([n_descriptors, *config.hidden, config.embedding_dim], config.dropout)

    def fit_scaling(self, x: torch.Tensor) -> None:
        """Set μ, σ from the training descriptors ``x`` of shape ``(n, p)`` (NaN ignored)."""
        mean = torch.nanmean(x, 0)
        centred = torch.where(torch.isnan(x), torch.zeros_like(x), x - mean)
        std = centred.pow(2).sum(0).div(torch.isfinite(x).sum(0).clamp(min=2) - 1).sqrt()
        self.input_mean.copy_(torch.nan_to_num(mean))
        self.input_std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, p) -> (n, d)
        z = torch.nan_to_num((x - self.input_mean) / self.input_std, nan=0.0).clamp(-10.0, 10.0)
        return self.net(z)


class GaussianDistances(nn.Module):
    """Expands a distance r into exp(−(r − c_k)² / w²) for K centres c_k evenly spaced on [0, cutoff]."""

    def __init__(self, cutoff: float, n_basis: int):
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_basis))
        self.width = cutoff / n_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # (E,) -> (E, K)
        return torch.exp(-((r[:, None] - self.centres) / self.width) ** 2)


class GatedGraphConvolution(nn.Module):
    """CGCNN convolution (Xie & Grossman 2018): with z_ij = [h_i, h_j, e_ij],
    h_i ← softplus(h_i + LayerNorm(Σ_j σ(W_g z_ij + b_g) ⊙ softplus(W_c z_ij + b_c)))."""

    def __init__(self, width: int, n_basis: int):
        super().__init__()
        self.gate = nn.Linear(2 * width + n_basis, width)
        self.core = nn.Linear(2 * width + n_basis, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, h: torch.Tensor, edges: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        centre, neighbour = edges
        z = torch.cat([h[centre], h[neighbour], e], dim=1)
        messages = torch.sigmoid(self.gate(z)) * nn.functional.softplus(self.core(z))
        summed = torch.zeros_like(h).index_add_(0, centre, messages)
        return nn.functional.softplus(h + self.norm(summed))


class CrystalGraphEncoder(nn.Module):
    """Message passing over the crystal graph, then mean pooling over atoms and an MLP:
    φ(G) = MLP(mean_i h_i^(L)), with h^(0) = W · (standardised element properties)."""

    def __init__(self, n_node_features: int, config: EncoderConfig):
        super().__init__()
        self.embed = nn.Linear(n_node_features, config.graph_width)
        self.distances = GaussianDistances(config.cutoff, config.distance_basis)
        self.convolutions = nn.ModuleList(GatedGraphConvolution(config.graph_width, config.distance_basis) for _ in range(config.graph_layers))
        self.readout = mlp([config.graph_width, *config.hidden, config.embedding_dim], config.dropout)

    def forward(self, graphs: GraphBatch) -> torch.Tensor:  # -> (n_graphs, d)
        h = self.embed(graphs.node_features)
        e = self.distances(graphs.edge_distances)
        for convolution in self.convolutions:
            h = convolution(h, graphs.edges, e)
        counts = torch.bincount(graphs.graph_of_node, minlength=graphs.n_graphs).clamp(min=1).unsqueeze(1)
        pooled = torch.zeros(graphs.n_graphs, h.shape[1]).index_add_(0, graphs.graph_of_node, h) / counts
        return self.readout(pooled)


def build_encoder(inputs: MaterialInputs, config: EncoderConfig) -> nn.Module:
    """An untrained encoder sized for ``inputs``; a descriptor encoder takes its scaling from them."""
    if isinstance(inputs, DescriptorInputs):
        encoder = DescriptorEncoder(inputs.x.shape[1], config)
        encoder.fit_scaling(inputs.x)
        return encoder
    if isinstance(inputs, CrystalGraphInputs):
        return CrystalGraphEncoder(inputs.node_features[0].shape[1], config)
    raise TypeError(f"no encoder for inputs of type {type(inputs).__name__}")


def encoder_input_size(inputs: MaterialInputs) -> int:
    return inputs.x.shape[1] if isinstance(inputs, DescriptorInputs) else inputs.node_features[0].shape[1]
