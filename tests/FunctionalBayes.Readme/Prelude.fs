/// The names that the README's F# fragments take as given (the user's data). The blocks are compiled, never run,
/// so these values only give the fragments their types.
module FunctionalBayes.Readme.Prelude

open FunctionalBayes
open FunctionalBayes.Tensors

/// Inputs, 8 rows and 2 columns.
let x = Tensor.zeros [| 8; 2 |]

/// Observations, 8 rows.
let y = Tensor.zeros [| 8 |]

/// The training data.
let data : Map<string, Tensor> = Map [ "x", x; "y", y; "sigma", Tensor.ones [| 8 |] ]

/// New rows to predict for.
let newData : Map<string, Tensor> = Map [ "x", x ]

/// An AEVB minibatch and a test set (rows of 784 pixels).
let batch = Tensor.zeros [| 4; 784 |]
let test = batch

/// A user's regression over data "x" and "y".
let regression (d: Map<string, Tensor>) : Model<Tensor> = Links.gaussian "y" (Tensor.sum d.["x"]) (d.TryFind "y")
