namespace FunctionalBayes.Tables

open System
open System.Collections.Generic
open System.IO

/// The levels of a categorical column in id order: level i has id i. Built from a table's levels in
/// ordinal order, or given (at prediction, the fit's vocabulary).
[<Sealed; AllowNullLiteral>]
type Vocabulary(levels: string seq) =
    let levels = Seq.toArray levels
    let ids =
        let d = Dictionary<string, int>(StringComparer.Ordinal)
        levels |> Array.iteri (fun i l ->
            if isNull l then invalidArg "levels" "Vocabulary: a level is null."
            if not (d.TryAdd(l, i)) then invalidArg "levels" (sprintf "Vocabulary: the level '%s' is given twice." l))
        d
    /// The levels, in id order.
    member _.Levels : string[] = Array.copy levels
    /// The number of levels.
    member _.Count = levels.Length
    /// The level of an id.
    member _.Level(id: int) = levels.[id]
    /// The id of a level, when it is one.
    member _.TryId(level: string, id: byref<int>) = ids.TryGetValue(level, &id)
    /// Levels equal, in order.
    override _.Equals(o: obj) = match o with :? Vocabulary as v -> v.Levels = levels | _ -> false
    override _.GetHashCode() = levels |> Array.fold (fun h l -> h * 31 + l.GetHashCode()) 17
    override _.ToString() = sprintf "Vocabulary(%d levels: %s%s)" levels.Length (String.Join(", ", Array.truncate 5 levels)) (if levels.Length > 5 then ", ..." else "")

/// How a column becomes a tensor.
[<RequireQualifiedAccess>]
type ColumnKind =
    /// float64 (any numeric source column, or numeric text).
    | Float64
    /// float32.
    | Float32
    /// int32: integral values only (a fractional value is an error).
    | Int32
    /// Ids 0..K-1 (int32) by a vocabulary: the one given (values outside it are unseen levels), or, with
    /// None, one built from the table's levels in ordinal order. Numbers are levels by their invariant text.
    | Categorical of Vocabulary option

/// A column read from a table, under its own name.
type Column = { Name: string; Kind: ColumnKind }

/// What a missing value (null, an empty CSV field, NaN) does.
[<RequireQualifiedAccess>]
type MissingPolicy =
    /// An error naming the source, column and row (the default).
    | Fail
    /// The row is left out of every tensor.
    | DropRow
    /// Numeric columns take this value; a missing categorical value is still an error.
    | Fill of float

/// What a level outside a given vocabulary does.
[<RequireQualifiedAccess>]
type UnseenLevelPolicy =
    /// An error naming the source, column, row and level (the default).
    | Fail
    /// The value is read as this level of the vocabulary (an "other" level, say).
    | AsLevel of string

/// Which columns to read and how: each column becomes a vector tensor under its name, except those that a
/// Matrix stacks into one [rows; k] tensor. Start from TableSchema.Of and the `with` syntax.
type TableSchema =
    { Columns: Column list
      /// (tensor name, numeric columns): the columns stacked, in this order, into a [rows; k] tensor; all
      /// Float64 or all Float32.
      Matrices: (string * string list) list
      Missing: MissingPolicy
      Unseen: UnseenLevelPolicy }

    /// Columns read as they say; no matrices, missing values and unseen levels are errors.
    static member Of(columns: Column list) = { Columns = columns; Matrices = []; Missing = MissingPolicy.Fail; Unseen = UnseenLevelPolicy.Fail }

    /// The schema with given vocabularies for its categorical columns (a fit's, to read rows for prediction).
    member s.WithVocabularies(vocabularies: Map<string, Vocabulary>) =
        { s with
            Columns =
                s.Columns |> List.map (fun c ->
                    match c.Kind, vocabularies.TryFind c.Name with
                    | ColumnKind.Categorical _, Some v -> { c with Kind = ColumnKind.Categorical (Some v) }
                    | _ -> c) }

/// Shorthands for columns.
[<RequireQualifiedAccess>]
module Column =
    /// A float64 column.
    let float64 name = { Name = name; Kind = ColumnKind.Float64 }
    /// A float32 column.
    let float32 name = { Name = name; Kind = ColumnKind.Float32 }
    /// An int32 column.
    let int32 name = { Name = name; Kind = ColumnKind.Int32 }
    /// A categorical column whose vocabulary is built from the table.
    let categorical name = { Name = name; Kind = ColumnKind.Categorical None }
    /// A categorical column with a given vocabulary.
    let categoricalOf name (vocabulary: Vocabulary) = { Name = name; Kind = ColumnKind.Categorical (Some vocabulary) }

/// A table could not be read as its schema says: the message names the source (file or query), the column
/// and the row (1-based data row; 0 when no row is concerned), and the fix.
type TableReadException(message: string, source: string, column: string, row: int64, inner: exn) =
    inherit Exception(message, inner)
    new(message, source, column, row) = TableReadException(message, source, column, row, null)
    /// The file, query or object read.
    member _.Table = source
    /// The column concerned ("" when none).
    member _.Column = column
    /// The 1-based data row concerned (0 when none).
    member _.Row = row

/// Rows read from a table as named tensors, with the vocabularies of its categorical columns.
[<NoEquality; NoComparison>]
type TableData =
    { /// Named tensors (rows on the first axis), as every fit and prediction takes them.
      Data: Map<string, FunctionalBayes.Tensors.Tensor>
      /// The vocabulary of each categorical column (keep it with the fit: prediction needs it).
      Vocabularies: Map<string, Vocabulary>
      /// Rows read (after any DropRow).
      Rows: int
      /// The file or query read.
      Source: string }
