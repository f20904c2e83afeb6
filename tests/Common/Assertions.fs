/// Assertions with xunit's names and semantics, raising Expecto's AssertException: the F# suites kept every
/// assertion word for word when they moved from xunit to Expecto. New tests may use Expecto's `Expect` directly.
namespace FunctionalBayes.TestAssertions

open System
open System.Collections.Generic
open Expecto

[<AbstractClass; Sealed>]
type Assert =

    static member private Fail(msg: string) : 'a = raise (AssertException msg)

    /// Equality with NaN equal to NaN and structural equality on arrays, records and unions (as xunit's default comparer).
    static member Equal<'T when 'T: equality>(expected: 'T, actual: 'T) : unit =
        if not (LanguagePrimitives.GenericEqualityER expected actual) then
            Assert.Fail(sprintf "Assert.Equal failed.\nExpected: %A\nActual:   %A" expected actual)

    /// Equal after rounding both to `precision` decimal places (xunit's rule).
    static member Equal(expected: float, actual: float, precision: int) : unit =
        let e = Math.Round(expected, precision, MidpointRounding.ToEven)
        let a = Math.Round(actual, precision, MidpointRounding.ToEven)
        if not (e.Equals a) then
            Assert.Fail(sprintf "Assert.Equal failed (%d decimal places).\nExpected: %.17g (rounded %.17g)\nActual:   %.17g (rounded %.17g)" precision expected e actual a)

    /// |expected − actual| ≤ tolerance (NaN equals NaN; equal infinities pass).
    static member Equal(expected: float, actual: float, tolerance: float) : unit =
        let ok = expected.Equals actual || abs (expected - actual) <= tolerance
        if not ok then
            Assert.Fail(sprintf "Assert.Equal failed (tolerance %g).\nExpected: %.17g\nActual:   %.17g" tolerance expected actual)

    static member NotEqual<'T when 'T: equality>(expected: 'T, actual: 'T) : unit =
        if LanguagePrimitives.GenericEqualityER expected actual then
            Assert.Fail(sprintf "Assert.NotEqual failed: both are %A" actual)

    static member True(condition: bool) : unit = if not condition then Assert.Fail "Assert.True failed."
    static member True(condition: bool, message: string) : unit = if not condition then Assert.Fail("Assert.True failed: " + message)
    static member False(condition: bool) : unit = if condition then Assert.Fail "Assert.False failed."
    static member False(condition: bool, message: string) : unit = if condition then Assert.Fail("Assert.False failed: " + message)

    /// The string contains the substring (ordinal).
    static member Contains(expectedSubstring: string, actualString: string) : unit =
        if obj.ReferenceEquals(actualString, null) || not (actualString.Contains(expectedSubstring, StringComparison.Ordinal)) then
            Assert.Fail(sprintf "Assert.Contains failed.\nNot found: %s\nIn:        %s" expectedSubstring actualString)

    static member Contains<'T when 'T: equality>(expected: 'T, collection: IEnumerable<'T>) : unit =
        if not (Seq.exists (fun x -> LanguagePrimitives.GenericEqualityER x expected) collection) then
            Assert.Fail(sprintf "Assert.Contains failed: %A not found in %A" expected (List.ofSeq collection))

    static member DoesNotContain(expectedSubstring: string, actualString: string) : unit =
        if not (obj.ReferenceEquals(actualString, null)) && actualString.Contains(expectedSubstring, StringComparison.Ordinal) then
            Assert.Fail(sprintf "Assert.DoesNotContain failed: %s found in %s" expectedSubstring actualString)

    static member Empty(collection: Collections.IEnumerable) : unit =
        let e = collection.GetEnumerator()
        if e.MoveNext() then Assert.Fail(sprintf "Assert.Empty failed: the collection has elements, the first is %A" e.Current)

    static member NotEmpty(collection: Collections.IEnumerable) : unit =
        if not (collection.GetEnumerator().MoveNext()) then Assert.Fail "Assert.NotEmpty failed."

    /// Runs the check on every element; reports the index of each element that failed.
    static member All<'T>(collection: IEnumerable<'T>, action: Action<'T>) : unit =
        let failures =
            collection
            |> Seq.mapi (fun i x -> try action.Invoke x; None with :? AssertException as e -> Some(i, e.Message))
            |> Seq.choose id
            |> List.ofSeq
        if not failures.IsEmpty then
            let first = failures |> List.truncate 5 |> List.map (fun (i, m) -> sprintf "[%d] %s" i m)
            Assert.Fail(sprintf "Assert.All failed for %d element(s):\n%s" failures.Length (String.Join("\n", first)))

    static member InRange<'T when 'T :> IComparable<'T>>(actual: 'T, low: 'T, high: 'T) : unit =
        if actual.CompareTo low < 0 || actual.CompareTo high > 0 then
            Assert.Fail(sprintf "Assert.InRange failed: %A is outside [%A, %A]" actual low high)

    static member private Catch(f: unit -> unit) : exn option =
        try f (); None with e -> Some e

    /// The exception of exactly type 'E.
    static member Throws<'E when 'E :> exn>(f: Action) : 'E =
        match Assert.Catch f.Invoke with
        | Some(:? 'E as e) when e.GetType() = typeof<'E> -> e
        | Some e -> Assert.Fail(sprintf "Assert.Throws failed: expected %s, got %s: %s" typeof<'E>.Name (e.GetType().Name) e.Message)
        | None -> Assert.Fail(sprintf "Assert.Throws failed: expected %s, nothing was thrown." typeof<'E>.Name)

    static member Throws<'E when 'E :> exn>(f: Func<obj>) : 'E = Assert.Throws<'E>(Action(fun () -> f.Invoke() |> ignore))

    /// An exception of type 'E or a subtype.
    static member ThrowsAny<'E when 'E :> exn>(f: Action) : 'E =
        match Assert.Catch f.Invoke with
        | Some(:? 'E as e) -> e
        | Some e -> Assert.Fail(sprintf "Assert.ThrowsAny failed: expected %s or a subtype, got %s: %s" typeof<'E>.Name (e.GetType().Name) e.Message)
        | None -> Assert.Fail(sprintf "Assert.ThrowsAny failed: expected %s, nothing was thrown." typeof<'E>.Name)

    static member ThrowsAny<'E when 'E :> exn>(f: Func<obj>) : 'E = Assert.ThrowsAny<'E>(Action(fun () -> f.Invoke() |> ignore))
