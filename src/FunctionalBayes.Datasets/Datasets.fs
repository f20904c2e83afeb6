namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Tasks of one classification problem, split into training and test rows per task.
[<NoEquality; NoComparison>]
type MultiTaskData =
    { /// Training inputs (tasks, nTrain, d).
      XTrain: Tensor
      /// Training labels (tasks, nTrain), 0 or 1.
      YTrain: Tensor
      /// Test inputs (tasks, nTest, d).
      XTest: Tensor
      /// Test labels (tasks, nTest), 0 or 1.
      YTest: Tensor
      /// Each task's rotation in degrees.
      Degrees: float[] }

    /// The number of tasks.
    member d.Tasks = d.XTrain.Shape.[0]

/// Synthetic data sets, generated from a key.
[<RequireQualifiedAccess>]
module Datasets =

    /// scikit-learn's make_moons: n points on two interleaving half circles (n / 2 rounded down on the
    /// outer one, label 0; the rest on the inner one, label 1), shuffled, plus Normal(0, noise) on each
    /// coordinate. Returns x (n, 2) and y (n,) of 0/1 labels.
    let makeMoons (key: RngKey) (n: int) (noise: float) : Tensor * Tensor =
        if n < 2 then invalidArg "n" (sprintf "Datasets.makeMoons: needs at least 2 points, got %d." n)
        if not (noise >= 0.0) || Double.IsInfinity noise then invalidArg "noise" (sprintf "Datasets.makeMoons: the noise sd must be finite and non-negative, got %g." noise)
        let nOut = n / 2
        let nIn = n - nOut
        let lin (m: int) (i: int) = if m = 1 then 0.0 else Math.PI * float i / float (m - 1)
        let pts =
            Array.append
                (Array.init nOut (fun i -> cos (lin nOut i), sin (lin nOut i), 0.0))
                (Array.init nIn (fun i -> 1.0 - cos (lin nIn i), 1.0 - sin (lin nIn i) - 0.5, 1.0))
        let kPerm, kNoise = Rng.split key
        let perm = Rng.permutation kPerm n |> Tensor.toInts
        let eps = Rng.normal kNoise [| n; 2 |] |> Tensor.toArray
        let x = Array.init (2 * n) (fun k -> let a, b, _ = pts.[perm.[k / 2]] in (if k % 2 = 0 then a else b) + noise * eps.[k])
        let y = Array.init n (fun i -> let _, _, c = pts.[perm.[i]] in c)
        Tensor.create [| n; 2 |] x, Tensor.create [| n |] y

    /// Per-column z-scores of x (n, d): (x − mean) / sd with the population sd (ddof 0, as
    /// scikit-learn's scale); a constant column is only centred.
    let standardize (x: Tensor) : Tensor =
        if x.Rank <> 2 || x.Shape.[0] < 1 then invalidArg "x" (sprintf "Datasets.standardize: x must be a matrix (n, d) with n ≥ 1, got shape %s." (Shape.format x.Shape))
        let n, d = x.Shape.[0], x.Shape.[1]
        let v = Tensor.toArray x
        let mean = Array.init d (fun j -> Array.init n (fun i -> v.[i * d + j]) |> Array.average)
        let sd = Array.init d (fun j -> sqrt (Array.init n (fun i -> (v.[i * d + j] - mean.[j]) ** 2.0) |> Array.average))
        Tensor.create x.Shape (Array.init v.Length (fun k -> let j = k % d in (v.[k] - mean.[j]) / (if sd.[j] > 0.0 then sd.[j] else 1.0)))

    /// The rows of x (n, 2) times the rotation matrix [[cos θ, −sin θ], [sin θ, cos θ]], θ in degrees
    /// (NumPy's X·R, as the notebook rotates).
    let rotate (degrees: float) (x: Tensor) : Tensor =
        if x.Rank <> 2 || x.Shape.[1] <> 2 then invalidArg "x" (sprintf "Datasets.rotate: x must be (n, 2), got shape %s." (Shape.format x.Shape))
        let t = degrees * Math.PI / 180.0
        let c, s = cos t, sin t
        Tensor.matmul x (Tensor.create [| 2; 2 |] [| c; -s; s; c |])

    /// BlackJAX's hierarchical-BNN data: for each of `tasks` tasks, makeMoons of `perTask` points with
    /// sd `noise`, standardized per column, rotated by Normal(0, 1)·90 degrees; the first nTrain points
    /// of each task are its training rows, the rest its test rows. The notebook: 18 tasks, 100 points,
    /// noise 0.3, 50 for training.
    let multiTaskMoons (key: RngKey) (tasks: int) (perTask: int) (nTrain: int) (noise: float) : MultiTaskData =
        if tasks < 1 then invalidArg "tasks" (sprintf "Datasets.multiTaskMoons: needs at least one task, got %d." tasks)
        if nTrain < 1 || nTrain >= perTask then
            invalidArg "nTrain" (sprintf "Datasets.multiTaskMoons: nTrain must be in 1..%d (perTask − 1) so that both splits have rows, got %d." (perTask - 1) nTrain)
        let keys = Rng.splitN key tasks
        let made =
            keys |> Array.map (fun k ->
                let kData, kAngle = Rng.split k
                let x, y = makeMoons kData perTask noise
                let deg = (Rng.normal kAngle [| 1 |] |> Tensor.toArray).[0] * 90.0
                rotate deg (standardize x), y, deg)
        let nTest = perTask - nTrain
        let part (f: Tensor * Tensor * float -> Tensor) start len = made |> Array.map (fun m -> Tensor.narrow 0 start len (f m)) |> Tensor.stack 0
        let xOf (x, _, _) = x
        let yOf (_, y, _) = y
        { XTrain = part xOf 0 nTrain; YTrain = part yOf 0 nTrain
          XTest = part xOf nTrain nTest; YTest = part yOf nTrain nTest
          Degrees = made |> Array.map (fun (_, _, d) -> d) }

    /// NumPy's mgrid[lo:hi:n·1j, lo:hi:n·1j] flattened to points (n², 2): point i·n + j is (v_i, v_j)
    /// with v = linspace(lo, hi, n), the notebook's grid for decision surfaces (n = 100 on [−3, 3]).
    let grid (lo: float) (hi: float) (n: int) : Tensor =
        if n < 2 then invalidArg "n" (sprintf "Datasets.grid: needs at least 2 points per axis, got %d." n)
        if not (hi > lo) then invalidArg "hi" (sprintf "Datasets.grid: hi (%g) must be above lo (%g)." hi lo)
        let v i = lo + (hi - lo) * float i / float (n - 1)
        Tensor.create [| n * n; 2 |] (Array.init (2 * n * n) (fun k -> let p = k / 2 in if k % 2 = 0 then v (p / n) else v (p % n)))
