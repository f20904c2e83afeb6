namespace FunctionalBayes.Tensors
// TEMPORARY naive placeholder until the blocked kernel lands.
[<RequireQualifiedAccess>]
module internal Gemm =
    let inline private gemm (transA: bool) (transB: bool) m n k (a: 'T[]) aOff lda (b: 'T[]) bOff ldb (c: 'T[]) cOff ldc (accumulate: bool) =
        for i in 0 .. m - 1 do
            for j in 0 .. n - 1 do
                let mutable s = if accumulate then c.[cOff + i * ldc + j] else LanguagePrimitives.GenericZero
                for p in 0 .. k - 1 do
                    let av = if transA then a.[aOff + p * lda + i] else a.[aOff + i * lda + p]
                    let bv = if transB then b.[bOff + j * ldb + p] else b.[bOff + p * ldb + j]
                    s <- s + av * bv
                c.[cOff + i * ldc + j] <- s
    let gemmF64 transA transB m n k (a: float[]) aOff lda (b: float[]) bOff ldb (c: float[]) cOff ldc accumulate =
        gemm transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate
    let gemmF32 transA transB m n k (a: float32[]) aOff lda (b: float32[]) bOff ldb (c: float32[]) cOff ldc accumulate =
        gemm transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate
